from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client

from anonauth.test import BROWSER_USER_AGENT, make_registered_user

BROWSER_AGENT = BROWSER_USER_AGENT


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


@pytest.fixture
def member(db: None) -> Any:
    return make_registered_user()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (threads against one database) skip elsewhere, saying why."""
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def token_authentication(settings: Any) -> None:
    """The project authenticates DRF views by session, Token and JWT."""
    settings.REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.SessionAuthentication",
            "rest_framework.authentication.TokenAuthentication",
            "rest_framework_simplejwt.authentication.JWTAuthentication",
        ]
    }
