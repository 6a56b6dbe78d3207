"""The shop's ``guest_linking`` receiver: a guest's cart is added to the account's."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from .models import Cart, CartItem


def merge_carts(sender: Any, guest: Any, user: Any, **kwargs: Any) -> None:
    """Sum the guest's cart into the account's; anonauth then moves whatever is left.

    Runs inside the link transaction: if it raises, the whole link rolls back.
    """
    guest_cart = Cart.objects.filter(owner=guest).first()
    user_cart = Cart.objects.filter(owner=user).first()
    if guest_cart is None or user_cart is None:
        return  # nothing to merge: the automatic move hands the guest's cart over
    for item in guest_cart.items.all():
        updated = CartItem.objects.filter(cart=user_cart, product=item.product_id).update(
            quantity=F("quantity") + item.quantity
        )
        if not updated:
            CartItem.objects.create(
                cart=user_cart, product_id=item.product_id, quantity=item.quantity
            )
    guest_cart.delete()
