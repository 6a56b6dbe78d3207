"""Rate-limit counts (internal): django-ratelimit's fixed windows, in one Redis round trip.

django-ratelimit counts a request with ``cache.add`` and then ``cache.incr``: on
Django's ``RedisCache`` that is three round trips once the window's key exists (``SET
NX``, then ``EXISTS`` and ``INCRBY``), and a new Redis client object for each. When the
rate-limit cache (``RATELIMIT_USE_CACHE``) is Django's ``RedisCache`` or django-redis'
default client, :func:`hit` counts in one round trip instead: ``SET key 0 EX ttl NX``
and ``INCR key`` in one tiny Lua script (``EVAL``: atomic, and cheaper for redis-py than
a ``MULTI``/``EXEC`` pipeline), on a client kept per cache (:func:`peek` reads the count
with one ``GET``). The key, the window (fixed, with django-ratelimit's per-key offset),
the expiry and the settings (``RATELIMIT_ENABLE``, ``RATELIMIT_CACHE_PREFIX``,
``RATELIMIT_HASH_ALGORITHM``) are django-ratelimit's, so both count the same requests
under the same key. Any other cache goes through django-ratelimit's ``get_usage``. A
cache that cannot be reached raises, as django-ratelimit does; the callers refuse.
"""

from __future__ import annotations

import hashlib
import re
import time
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django_ratelimit.core import get_usage

# django-ratelimit's: the key outlives its window by this many seconds.
EXPIRATION_FUDGE = 5
PERIODS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}
RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
# django-ratelimit's ``add`` (with the window's expiry) and ``incr``, as one atomic command.
COUNT_SCRIPT = (
    "redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX') return redis.call('INCR', KEYS[1])"
)
# The Redis client of each cache object, or None (Django's RedisCache builds a client per
# command).
_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Usage:
    """One count: whether the request is over the limit, and the seconds left in the
    window (``-1`` when django-ratelimit could not count, and refuses)."""

    should_limit: bool
    time_left: int


def hit(request: HttpRequest, *, group: str, value: str, rate: str) -> Usage | None:
    """Count ``request`` against ``rate`` for ``value`` (an address, a guest...) in
    ``group``; ``None`` when rate limiting is off (``RATELIMIT_ENABLE = False``)."""
    return _count(request, group, value, rate, increment=True)


def peek(request: HttpRequest, *, group: str, value: str, rate: str) -> Usage | None:
    """Whether ``value`` has used up ``rate`` in ``group`` (``should_limit``: the next
    count would be over it), counting nothing."""
    return _count(request, group, value, rate, increment=False)


def _count(
    request: HttpRequest, group: str, value: str, rate: str, *, increment: bool
) -> Usage | None:
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    parsed = parse_rate(rate)
    client = redis_client(cache) if parsed is not None else None
    if client is None or parsed is None:
        return _through_django_ratelimit(request, group, value, rate, increment=increment)
    limit, period = parsed
    window = window_end(value, period)
    key = cache.make_and_validate_key(cache_key(group, limit, period, value, window))
    time_left = window - int(time.time())
    if not increment:
        return Usage(should_limit=int(client.get(key) or 0) >= limit, time_left=time_left)
    count = client.eval(COUNT_SCRIPT, 1, key, period + EXPIRATION_FUDGE)
    return Usage(should_limit=int(count) > limit, time_left=time_left)


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``(limit, seconds)`` of a rate like ``"30/m"`` or ``"5/10s"``, else ``None``."""
    match = RATE.match(rate)
    if match is None:
        return None
    count, multiplier, period = match.groups()
    return int(count), PERIODS[period] * int(multiplier or 1)


def window_end(value: str, period: int) -> int:
    """The end of the current window for ``value``: fixed windows, each key's offset by
    its CRC32, as django-ratelimit computes them."""
    now = int(time.time())
    if period == 1:
        return now
    end = now - (now % period) + (zlib.crc32(value.encode()) % period)
    return end + period if end < now else end


def cache_key(group: str, limit: int, period: int, value: str, window: int) -> str:
    """django-ratelimit's cache key (before the cache's own prefix and version)."""
    prefix: str = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
    algorithm: Any = getattr(settings, "RATELIMIT_HASH_ALGORITHM", hashlib.sha256)
    if isinstance(algorithm, str):
        algorithm = import_string(algorithm)
    parts = f"{group}{limit}/{period}s{value}{window}"
    return prefix + str(algorithm(parts.encode()).hexdigest())


def redis_client(cache: BaseCache) -> Any:
    """The Redis client that writes for ``cache``, or ``None`` unless it is Django's
    ``RedisCache`` or django-redis with its default client (kept per cache object)."""
    try:
        return _clients[cache]
    except KeyError:
        client = _clients[cache] = _writing_client(cache)  # None too: asked once per cache
        return client


def _writing_client(cache: BaseCache) -> Any:
    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    django_redis = _django_redis_client(cache)
    return None if django_redis is None else django_redis.get_client(write=True)


def _django_redis_client(cache: BaseCache) -> Any:
    """django-redis' ``DefaultClient`` of ``cache`` (not the sharded or herd clients,
    whose keys or values differ), or ``None``."""
    try:
        from django_redis.cache import RedisCache as DjangoRedisCache
        from django_redis.client import DefaultClient, HerdClient, ShardClient
    except ImportError:
        return None
    if not isinstance(cache, DjangoRedisCache):
        return None
    client = cache.client
    plain = isinstance(client, DefaultClient) and not isinstance(client, HerdClient | ShardClient)
    return client if plain else None


def _through_django_ratelimit(
    request: HttpRequest, group: str, value: str, rate: str, *, increment: bool
) -> Usage | None:
    key: Callable[[str, HttpRequest], str] = lambda _group, _request: value  # noqa: E731
    usage: dict[str, Any] | None = get_usage(
        request, group=group, key=key, rate=rate, increment=increment
    )
    if usage is None:
        return None
    # Counted, the request is over the limit past it; peeked, once it is reached.
    over = usage["should_limit"] if increment else usage["count"] >= usage["limit"]
    return Usage(should_limit=bool(over), time_left=int(usage["time_left"]))
