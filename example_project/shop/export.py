"""The shop's data export: a cart with its items (the items point at the cart, not at
the user, so the default export would show the cart's id alone)."""

from __future__ import annotations

from typing import Any

from anonauth.export import default_row

from .models import Cart


def cart(cart: Cart) -> dict[str, Any]:
    items = cart.items.select_related("product").order_by("pk")
    lines = [
        {"product": item.product.name, "price": item.product.price, "quantity": item.quantity}
        for item in items
    ]
    return {**default_row(cart), "items": lines}
