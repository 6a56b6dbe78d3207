"""Settings for the web processes ``test_rate_limit_processes`` starts.

Each process reads the same environment: a SQLite file (``ANONAUTH_PROCESS_DB``) and
the Redis cache (``REDIS_URL``) as the default cache, where the rate limit counts under
``RATELIMIT_CACHE_PREFIX``, so the processes share one count per client address.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["ANONAUTH_PROCESS_DB"],
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
    }
}
RATELIMIT_CACHE_PREFIX = os.environ["RATELIMIT_CACHE_PREFIX"]
ANONAUTH_RATE_LIMIT = "3/h"  # a long window: no reset can fall between the requests
