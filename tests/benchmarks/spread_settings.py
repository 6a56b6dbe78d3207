"""The test settings with the default cache in Redis (``REDIS_URL``), so that the purge
lock is shared by the benchmark's Celery workers as it would be in production."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import CACHES

CACHES["default"] = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": os.environ["REDIS_URL"],
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
