"""The shop's receivers: a guest's cart is added to the account's, and the visitor is told;
the campaign a guest came with (its metadata) is carried over to the account."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.db.models import F

from .models import Cart, CartItem
from .policy import CAMPAIGN_KEY

logger = logging.getLogger("example_project.shop")


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


def announce_cart(sender: Any, user: Any, request: Any, **kwargs: Any) -> None:
    """After a guest signed into its account (``guest_linked``), say where its cart went."""
    if request is not None and CartItem.objects.filter(cart__owner=user).exists():
        messages.info(
            request, "Welcome back: what you added as a guest is in your cart.", fail_silently=True
        )


def carry_campaign(
    sender: Any, user: Any, request: Any, metadata: dict[str, Any], **kwargs: Any
) -> None:
    """After an upgrade or a link (``guest_upgraded``, ``guest_linked``): the account keeps
    the campaign its guest came with, here in the log and on the next page. Metadata is
    only data the visitor's browser sent: never a reason to grant anything."""
    campaign = metadata.get(CAMPAIGN_KEY)
    if not campaign:
        return
    logger.info("shop: user %s came with the %r campaign", user.pk, campaign)
    if request is not None:
        messages.info(request, f"You came with the “{campaign}” campaign.", fail_silently=True)
