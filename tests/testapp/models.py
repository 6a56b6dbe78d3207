"""Test-only models: a basket with items, the guest data that core tests create (they
never import the demo), and the relations besides plain CASCADEs that the purge must
honour."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def no_editor() -> None:
    """``SET()`` callable: an edited review loses its editor."""
    return None


class Invoice(models.Model):
    """Bookkeeping that must outlive its customer: ``PROTECT`` blocks deleting the user."""

    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"invoice {self.pk}"


class Review(models.Model):
    """Kept when the people on it go: ``SET_NULL``, ``SET_DEFAULT`` and ``SET()``."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="reviews"
    )
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_DEFAULT,
        null=True,
        default=None,
        related_name="moderated_reviews",
    )
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET(no_editor),
        null=True,
        related_name="edited_reviews",
    )

    def __str__(self) -> str:
        return f"review {self.pk}"


class Basket(models.Model):
    """A user's data with rows hanging off it: one basket per user (a one-to-one)."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="basket"
    )

    def __str__(self) -> str:
        return f"basket {self.pk}"


class BasketItem(models.Model):
    """A line of a basket: reaches the user only through the basket."""

    basket = models.ForeignKey(Basket, on_delete=models.CASCADE, related_name="items")
    name = models.CharField(max_length=50)
    quantity = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"


class GiftWrap(models.Model):
    """Hangs off a basket and ``RESTRICT``s its deletion: a blocker two levels down."""

    basket = models.ForeignKey(Basket, on_delete=models.RESTRICT)

    def __str__(self) -> str:
        return f"gift wrap {self.pk}"


class AccessLog(models.Model):
    """A log the database must keep consistent on its own: ``DO_NOTHING`` with the
    constraint in place (deleting the user first breaks the foreign key)."""

    visitor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="access_logs"
    )

    def __str__(self) -> str:
        return f"access log {self.pk}"
