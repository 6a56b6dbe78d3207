"""The example shop: a guest shops, the banner shows, checkout needs an account."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from anonauth.models import Guest
from example_project.shop.models import Cart, Order, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def mug() -> Product:
    return Product.objects.create(name="Mug", price=Decimal("8.00"))


def test_a_visitor_browses_without_becoming_a_guest(browser: Client, mug: Product) -> None:
    page = browser.get("/").content.decode()
    assert "Mug" in page
    assert "shopping as a guest" not in page
    assert not Guest.objects.exists()


def test_add_to_cart_makes_a_guest_with_a_cart(browser: Client, mug: Product) -> None:
    response = browser.post(f"/cart/add/{mug.pk}/", follow=True)
    page = response.content.decode()
    assert "You are shopping as a guest" in page
    assert "1 \N{MULTIPLICATION SIGN} Mug" in page
    browser.post(f"/cart/add/{mug.pk}/")
    cart = Cart.objects.get(owner=Guest.objects.get().user)
    assert cart.items.get().quantity == 2


def test_a_refused_visitor_is_told_why(mug: Product) -> None:
    response = Client(HTTP_USER_AGENT="curl/8").post(f"/cart/add/{mug.pk}/", follow=True)
    assert "Please enable cookies" in response.content.decode()
    assert not Cart.objects.exists()


def test_guests_cannot_check_out(browser: Client, mug: Product) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    response = browser.post("/checkout/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Order.objects.exists()


def test_members_check_out(member: Any, mug: Product) -> None:
    client = Client()
    client.force_login(member)
    client.post(f"/cart/add/{mug.pk}/")
    client.post(f"/cart/add/{mug.pk}/")
    response = client.post("/checkout/", follow=True)
    assert "placed" in response.content.decode()
    assert Order.objects.get(customer=member).total == Decimal("16.00")


@pytest.mark.auth_user_only
def test_seed_demo_is_idempotent(capsys: Any) -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    assert Product.objects.count() == 4
    customer_cart = Cart.objects.get(owner__username="customer")
    assert [str(item) for item in customer_cart.items.all()] == ["1 x Coffee beans"]
    out = capsys.readouterr().out
    assert "Staff account: admin /" in out
    assert "Customer account: customer /" in out
