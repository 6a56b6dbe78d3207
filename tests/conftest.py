from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.test import Client


@pytest.fixture(autouse=True)
def _clear_caches() -> Iterator[None]:
    """Rate-limit counters live in the cache: every test starts from zero."""
    for cache in caches.all():
        cache.clear()
    return


@pytest.fixture
def browser() -> Client:
    """A client that behaves like a browser: a real user agent and a cookie to its name."""
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    client.cookies["seen"] = "1"
    return client
