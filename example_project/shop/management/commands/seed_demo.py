"""Seed the demo: a few products and a staff account, printed for the visitor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from example_project.shop.models import Product

PRODUCTS = [
    ("Coffee beans", "12.50"),
    ("Mug", "8.00"),
    ("Grinder", "49.90"),
    ("Filter papers", "3.20"),
]
STAFF_USERNAME = "admin"
STAFF_PASSWORD = "demo-admin-password"


class Command(BaseCommand):
    help = "Create the demo products and staff account (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, price in PRODUCTS:
            Product.objects.get_or_create(name=name, defaults={"price": Decimal(price)})
        user_model = get_user_model()
        if not user_model.objects.filter(username=STAFF_USERNAME).exists():
            user_model.objects.create_superuser(STAFF_USERNAME, "admin@example.com", STAFF_PASSWORD)
        self.stdout.write(f"{len(PRODUCTS)} products ready.")
        self.stdout.write(f"Staff account: {STAFF_USERNAME} / {STAFF_PASSWORD} (admin at /admin/)")
