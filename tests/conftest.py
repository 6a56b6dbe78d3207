from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.test import Client

BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


@pytest.fixture(autouse=True)
def _clear_caches() -> None:
    """Rate-limit counters live in the cache: every test starts from zero."""
    for cache in caches.all():
        cache.clear()


@pytest.fixture
def browser() -> Client:
    """A client that behaves like a browser: a real user agent and a cookie to its name."""
    client = Client(HTTP_USER_AGENT=BROWSER_AGENT)
    client.cookies["seen"] = "1"
    return client


def make_user(
    email: str = "member@example.com", password: str = "correct-horse-42", **extra: Any
) -> Any:
    """A registered user under whichever user model the settings install."""
    model = get_user_model()
    if model.USERNAME_FIELD == "email":
        return model.objects.create_user(email=email, password=password, **extra)
    return model.objects.create_user(
        username=email.split("@")[0], email=email, password=password, **extra
    )


@pytest.fixture
def member(db: None) -> Any:
    return make_user()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (threads against one database) skip elsewhere, saying why."""
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
