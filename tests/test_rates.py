"""The rate-limit count: one Redis round trip per check, django-ratelimit's windows and
keys, django-ratelimit itself for other caches, and a refusal when the cache is down."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.test import RequestFactory, override_settings
from django_ratelimit.core import get_usage
from redis.connection import AbstractConnection

from anonauth import guests, rates
from anonauth.exceptions import GuestUnavailable, RateLimited

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL")
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
DJANGO_REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
DJANGO_REDIS_PACKAGE = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": REDIS_URL,
    "KEY_PREFIX": "package",
}
REDIS_CACHES = {
    "django": {"default": LOCMEM, "counts": DJANGO_REDIS},
    "django-redis": {"default": LOCMEM, "counts": DJANGO_REDIS_PACKAGE},
}
GROUP = "tests.rates"


def request() -> Any:
    return RequestFactory().get("/", REMOTE_ADDR="192.0.2.10")


@contextmanager
def counting_caches(name: str) -> Iterator[None]:
    with override_settings(CACHES=REDIS_CACHES[name], RATELIMIT_USE_CACHE="counts"):
        caches["counts"].clear()
        yield


@contextmanager
def round_trips() -> Iterator[list[Any]]:
    """Every write of commands to Redis (a pipeline is one), as a list of calls."""
    sent: list[Any] = []
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)

    with mock.patch.object(AbstractConnection, "send_packed_command", counting):
        yield sent


def django_ratelimit_count(key: str, *, increment: bool) -> Any:
    return get_usage(request(), group=GROUP, key=lambda *_: key, rate="3/m", increment=increment)


def check(rate: str = "3/m", key: str | None = None) -> None:
    guests.check_rate(request(), group=GROUP, rate=rate, key=key)


@needs_redis
@pytest.mark.parametrize("cache", list(REDIS_CACHES))
class TestOnRedis:
    def test_one_round_trip_per_check(self, cache: str) -> None:
        with counting_caches(cache):
            check()  # connects (and may say hello) once
            with round_trips() as sent:
                check()
                check()
        assert len(sent) == 2

    def test_the_limit_holds_and_says_when_to_retry(self, cache: str) -> None:
        with counting_caches(cache):
            for _ in range(3):
                check()
            with pytest.raises(RateLimited) as refused:
                check()
            check(key="another client")  # counted apart
        assert 1 <= refused.value.retry_after <= 60

    def test_the_count_is_django_ratelimits(self, cache: str) -> None:
        """Same key and window as django-ratelimit's own count: the two add up (a
        deployment that runs both, as during an upgrade, keeps one limit)."""
        with counting_caches(cache):
            for _ in range(2):
                django_ratelimit_count("shared", increment=True)
            check(key="shared")
            with pytest.raises(RateLimited):
                check(key="shared")
            usage = django_ratelimit_count("shared", increment=False)
        assert usage is not None
        assert usage["count"] == 4

    def test_a_peek_counts_nothing_and_says_when_the_limit_is_reached(self, cache: str) -> None:
        def peek() -> bool:
            usage = rates.peek(request(), group=GROUP, value="k", rate="2/m")
            assert usage is not None
            return usage.should_limit

        with counting_caches(cache):
            assert not peek()
            check(rate="2/m", key="k")
            with round_trips() as sent:
                assert not peek()
            check(rate="2/m", key="k")
            assert [peek(), peek()] == [True, True]
        assert len(sent) == 1

    def test_the_key_expires_with_its_window(self, cache: str) -> None:
        with counting_caches(cache):
            check(rate="3/h")
            client = rates.redis_client(caches["counts"])
            (key,) = client.keys("*")
            assert 3600 < client.ttl(key) <= 3600 + rates.EXPIRATION_FUDGE

    def test_the_client_is_kept(self, cache: str) -> None:
        with counting_caches(cache):
            client = rates.redis_client(caches["counts"])
            assert client is not None
            assert rates.redis_client(caches["counts"]) is client


@needs_redis
def test_django_ratelimit_alone_costs_three_round_trips() -> None:
    """What the one round trip replaces (``add``, then ``exists`` and ``incr``)."""
    with counting_caches("django"):
        django_ratelimit_count("k", increment=True)
        with round_trips() as sent:
            django_ratelimit_count("k", increment=True)
    assert len(sent) == 3


class TestOtherCaches:
    def test_a_local_cache_counts_through_django_ratelimit(self) -> None:
        with mock.patch("anonauth.rates.get_usage", wraps=get_usage) as counted:
            for _ in range(3):
                check()
            with pytest.raises(RateLimited):
                check()
        assert counted.call_count == 4

    @needs_redis
    def test_a_rate_it_does_not_parse_goes_to_django_ratelimit(self) -> None:
        with counting_caches("django"), mock.patch("anonauth.rates.get_usage") as counted:
            counted.return_value = None
            check(rate="3/10")  # django-ratelimit's seconds, no unit
        assert counted.call_count == 1

    def test_django_ratelimits_failed_count_refuses(self) -> None:
        failed = {"count": 0, "limit": 0, "should_limit": True, "time_left": -1}
        with (
            mock.patch("anonauth.rates.get_usage", return_value=failed),
            pytest.raises(RateLimited) as refused,
        ):
            check()
        assert refused.value.retry_after == 1

    def test_a_local_cache_peeks_through_django_ratelimit(self) -> None:
        check(rate="1/m", key="k")
        usage = rates.peek(request(), group=GROUP, value="k", rate="1/m")
        assert usage is not None
        assert usage.should_limit

    @override_settings(RATELIMIT_ENABLE=False)
    def test_rate_limiting_switched_off(self) -> None:
        for _ in range(5):
            check(rate="1/m")
        assert rates.peek(request(), group=GROUP, value="k", rate="1/m") is None


@pytest.mark.parametrize(
    "backend", ["django.core.cache.backends.redis.RedisCache", "django_redis.cache.RedisCache"]
)
def test_an_unreachable_redis_refuses(backend: str) -> None:
    down = {"default": LOCMEM, "counts": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:1/0"}}
    settings = override_settings(CACHES=down, RATELIMIT_USE_CACHE="counts")
    with settings, pytest.raises(GuestUnavailable):
        check()


def test_other_django_redis_clients_are_not_used() -> None:
    sharded = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": ["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"],
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"},
    }
    with override_settings(CACHES={"default": LOCMEM, "counts": sharded}):
        assert rates.redis_client(caches["counts"]) is None
        assert rates.redis_client(caches["default"]) is None


def test_without_django_redis_other_caches_use_django_ratelimit() -> None:
    with override_settings(CACHES={"default": LOCMEM}):  # a cache object never asked before
        with mock.patch.dict(sys.modules, {"django_redis.cache": None}):
            assert rates.redis_client(caches["default"]) is None
        with mock.patch("anonauth.rates._writing_client") as asked:
            assert rates.redis_client(caches["default"]) is None
        asked.assert_not_called()  # the answer is kept


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("30/m", (30, 60)), ("5/10s", (5, 10)), ("100/2h", (100, 7200)), ("1/d", (1, 86400))],
)
def test_rates_parse_as_django_ratelimit_reads_them(rate: str, parsed: tuple[int, int]) -> None:
    assert rates.parse_rate(rate) == parsed
    assert rates.parse_rate("3/10") is None


@override_settings(RATELIMIT_HASH_ALGORITHM="hashlib.md5", RATELIMIT_CACHE_PREFIX="x:")
def test_the_hash_and_prefix_settings_apply() -> None:
    digest = hashlib.md5(b"g3/60sv99").hexdigest()
    assert rates.cache_key("g", 3, 60, "v", 99) == f"x:{digest}"


def test_a_one_second_window_ends_now() -> None:
    with mock.patch("anonauth.rates.time.time", return_value=1000.5):
        assert rates.window_end("v", 1) == 1000
