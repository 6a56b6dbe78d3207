"""Data builders shared by the purge tests, on top of ``anonauth.test``."""

from __future__ import annotations

import itertools
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model

from anonauth import test as anonauth_test
from anonauth.models import Guest
from tests.testapp.models import Basket, BasketItem

_numbers = itertools.count()


def make_guest(*, days_ago: float = 60, items: int = 0, session: bool = False) -> Any:
    """A guest last seen ``days_ago`` days ago, with a basket of ``items`` lines if asked."""
    user = anonauth_test.make_guest(seen_ago=timedelta(days=days_ago))
    if items:
        fill_cart(user, items)
    if session:
        add_session(user)
    return user


def make_member(**fields: Any) -> Any:
    """A registered user (no Guest row) with a login of its own, whatever the user model."""
    return anonauth_test.make_registered_user(f"member{next(_numbers)}@example.com", **fields)


def fill_cart(user: Any, items: int) -> Basket:
    """Give ``user`` a basket of ``items`` lines (it must not have one yet)."""
    basket = Basket.objects.create(owner=user)
    BasketItem.objects.bulk_create(
        BasketItem(basket=basket, name=f"item {next(_numbers)}") for _ in range(items)
    )
    return basket


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
