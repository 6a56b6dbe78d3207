"""Seed the demo: a few products, a staff account and a customer with a cart, printed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from example_project.shop.models import Cart, CartItem, Product

PRODUCTS = [
    ("Coffee beans", "12.50"),
    ("Mug", "8.00"),
    ("Grinder", "49.90"),
    ("Filter papers", "3.20"),
]
STAFF_USERNAME = "admin"
STAFF_PASSWORD = "demo-admin-password"
# An existing account with something in its cart: sign into it as a guest with a cart
# of your own and the two carts are merged.
CUSTOMER_USERNAME = "customer"
CUSTOMER_PASSWORD = "demo-customer-password"
CUSTOMER_CART_PRODUCT = "Coffee beans"


class Command(BaseCommand):
    help = "Create the demo products, staff account and customer (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, price in PRODUCTS:
            Product.objects.get_or_create(name=name, defaults={"price": Decimal(price)})
        user_model = get_user_model()
        if not user_model.objects.filter(username=STAFF_USERNAME).exists():
            user_model.objects.create_superuser(STAFF_USERNAME, "admin@example.com", STAFF_PASSWORD)
        seed_customer_cart()
        self.stdout.write(f"{len(PRODUCTS)} products ready.")
        self.stdout.write(f"Staff account: {STAFF_USERNAME} / {STAFF_PASSWORD} (admin at /admin/)")
        self.stdout.write(
            f"Customer account: {CUSTOMER_USERNAME} / {CUSTOMER_PASSWORD} "
            f"(its cart holds 1 \N{MULTIPLICATION SIGN} {CUSTOMER_CART_PRODUCT})"
        )


def seed_customer_cart() -> None:
    """The demo customer, whose cart holds one product whenever it is empty."""
    user_model = get_user_model()
    customer = user_model.objects.filter(username=CUSTOMER_USERNAME).first()
    if customer is None:
        customer = user_model.objects.create_user(
            CUSTOMER_USERNAME, "customer@example.com", CUSTOMER_PASSWORD
        )
    cart, _ = Cart.objects.get_or_create(owner=customer)
    if not cart.items.exists():
        product = Product.objects.get(name=CUSTOMER_CART_PRODUCT)
        CartItem.objects.create(cart=cart, product=product, quantity=1)
