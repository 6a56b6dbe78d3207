"""Data builders and signal capture shared by the purge tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.dispatch import Signal
from django.utils import timezone

from anonauth.guests import create_guest
from anonauth.models import Guest
from example_project.shop.models import Cart, CartItem, Product

_numbers = itertools.count()


def make_guest(*, days_ago: float = 60, items: int = 0, session: bool = False) -> Any:
    """A guest last seen ``days_ago`` days ago, with a cart of ``items`` lines if asked."""
    user = create_guest()
    Guest.objects.filter(pk=user.pk).update(last_seen=timezone.now() - timedelta(days=days_ago))
    if items:
        fill_cart(user, items)
    if session:
        add_session(user)
    return user


def make_member(**fields: Any) -> Any:
    """A registered user (no Guest row), whatever the user model."""
    user_model = get_user_model()
    login = f"member{next(_numbers)}@example.com"
    return user_model._default_manager.create_user(  # type: ignore[attr-defined]
        **{user_model.USERNAME_FIELD: login}, password="pw", **fields
    )


def fill_cart(user: Any, items: int) -> Cart:
    cart = Cart.objects.create(owner=user)
    for _ in range(items):
        product = Product.objects.create(name=f"product {next(_numbers)}", price=1)
        CartItem.objects.create(cart=cart, product=product)
    return cart


def add_session(user: Any) -> str | None:
    """A session for ``user`` in the configured engine, recorded on its Guest row."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store.save()
    key: str | None = store.session_key
    if key is not None and len(key) <= 40:
        Guest.objects.filter(pk=user.pk).update(session_key=key)
    return key


def exists(user: Any) -> bool:
    return get_user_model()._base_manager.filter(pk=user.pk).exists()


@contextmanager
def received(signal: Signal) -> Iterator[list[dict[str, Any]]]:
    """Record what ``signal`` sends while the block runs; always disconnects."""
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    signal.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)
