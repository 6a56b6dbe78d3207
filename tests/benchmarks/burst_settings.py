"""The example shop as ``make bench-load`` serves it under gunicorn: PostgreSQL from
``DATABASE_URL`` and Redis from ``REDIS_URL`` (both read by the example settings), no
debug, persistent connections, and each visitor's address from ``X-Forwarded-For``
(one trusted proxy), so the per-IP rate limit counts visitors, not the loopback."""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import DATABASES

if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    raise RuntimeError("the burst benchmark runs on PostgreSQL: set DATABASE_URL")
if not os.environ.get("REDIS_URL"):
    raise RuntimeError("the burst benchmark caches in Redis: set REDIS_URL")

DEBUG = False
ROOT_URLCONF = "tests.benchmarks.burst_urls"  # the shop's, and the one-row view
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BURST_CONN_MAX_AGE", "60"))
ANONAUTH_TRUSTED_PROXIES = 1
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": []},
}
# anonauth's defaults: the example's live-guest cap (50 per network) would refuse the
# benchmark's visitors, whose addresses run through a few /24 networks; what the cap
# costs is bench_policy's to measure.
ANONAUTH_LIVE_GUEST_CAP = None
