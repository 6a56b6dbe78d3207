"""Celery task ``anonauth.purge_anonymous``: :func:`~anonauth.purge.purge_guests`, one
run at a time.

A lock in the default cache (shared, such as Redis, in production) keeps two runs from
overlapping: a run that finds it taken returns at once. The lock expires after
``ANONAUTH_PURGE_LOCK_TIMEOUT`` seconds and is renewed after every batch, so a crashed
worker holds it for at most that long.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.core.cache import cache

from anonauth.checks import short_cutoff_problem
from anonauth.conf import conf
from anonauth.purge import PurgeResult, purge_guests

LOCK_KEY = "anonauth:purge_anonymous:lock"


class PurgeLock:
    """A cache-held lock: ``cache.add`` takes it, only its holder renews or frees it."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)

    def acquire(self) -> bool:
        return bool(cache.add(LOCK_KEY, self.token, conf.PURGE_LOCK_TIMEOUT))

    def renew(self, result: PurgeResult | None = None) -> None:
        if cache.get(LOCK_KEY) == self.token:
            cache.touch(LOCK_KEY, conf.PURGE_LOCK_TIMEOUT)

    def release(self) -> None:
        if cache.get(LOCK_KEY) == self.token:
            cache.delete(LOCK_KEY)


@shared_task(name="anonauth.purge_anonymous")  # type: ignore[untyped-decorator]
def purge_anonymous(
    older_than: float | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Purge stale guests; ``older_than`` in seconds (default ``ANONAUTH_MAX_AGE``).

    Returns the run's summary with ``"status": "done"`` (a dry run reports its count as
    ``"would_purge"``, with ``"purged": 0``), or ``{"status": "locked"}`` when another
    run holds the lock. Raises ``ValueError`` for bad input, such as an ``older_than``
    not longer than ``ANONAUTH_TOUCH_INTERVAL`` (it would purge active guests).
    """
    cutoff = _cutoff(older_than)
    lock = PurgeLock()
    if not lock.acquire():
        return {"status": "locked"}
    try:
        result = purge_guests(
            older_than=cutoff,
            batch_size=batch_size,
            limit=limit,
            dry_run=dry_run,
            progress=lock.renew,
        )
    finally:
        lock.release()
    return {"status": "done", **_summary(result)}


def _cutoff(older_than: float | None) -> timedelta:
    cutoff = conf.MAX_AGE if older_than is None else timedelta(seconds=older_than)
    problem = short_cutoff_problem(cutoff)
    if problem is not None:
        source = "ANONAUTH_MAX_AGE" if older_than is None else f"older_than={older_than!r}"
        raise ValueError(f"{source} {problem}.")
    return cutoff


def _summary(result: PurgeResult) -> dict[str, Any]:
    """The result's summary; a dry run deleted nothing, so its count is ``would_purge``."""
    summary = result.summary()
    if result.dry_run:
        summary["would_purge"], summary["purged"] = summary["purged"], 0
    return summary
