"""Celery tasks: ``anonauth.purge_anonymous`` runs :func:`~anonauth.purge.purge_guests`,
one run at a time, in one worker or spread over several.

A lock in the default cache (shared, such as Redis, in production) keeps two runs from
overlapping: a run that finds it taken returns at once. The lock expires after
``ANONAUTH_PURGE_LOCK_TIMEOUT`` seconds and is renewed after every batch, so a crashed
worker holds it for at most that long.

With ``ANONAUTH_PURGE_SHARDS`` above 1 (or ``shards=N``), the run that holds the lock
splits the stale guests into primary-key ranges (:func:`~anonauth.purge.split_stale_guests`)
and replaces itself with a chord: one ``anonauth.purge_shard`` task per range, then
``anonauth.purge_sum``, whose result (the sum of the shards) becomes the run's result.
The shards renew the run's lock after each of their batches, and ``purge_sum`` frees it.
The ranges never overlap; ``SKIP LOCKED`` stays the safety net.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from celery import chord, shared_task
from django.core.cache import cache

from anonauth import observe
from anonauth.checks import short_cutoff_problem
from anonauth.conf import conf
from anonauth.purge import (
    MAX_REPORTED_BLOCKED,
    PurgeResult,
    Shard,
    check_arguments,
    purge_guests,
)
from anonauth.purge import split_stale_guests as split

logger = logging.getLogger("anonauth.purge")

LOCK_KEY = "anonauth:purge_anonymous:lock"
# The numbers of a summary that add up across shards (the rest are merged or kept apart).
SUMMED = ("examined", "purged", "spared", "blocked", "sessions", "batches")


class PurgeLock:
    """A cache-held lock: ``cache.add`` takes it, only its holder renews or frees it."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_hex(16)

    def acquire(self) -> bool:
        return bool(cache.add(LOCK_KEY, self.token, conf.PURGE_LOCK_TIMEOUT))

    def renew(self, result: PurgeResult | None = None) -> None:
        if cache.get(LOCK_KEY) == self.token:
            cache.touch(LOCK_KEY, conf.PURGE_LOCK_TIMEOUT)

    def release(self) -> None:
        if cache.get(LOCK_KEY) == self.token:
            cache.delete(LOCK_KEY)


@shared_task(name="anonauth.purge_anonymous", bind=True)  # type: ignore[untyped-decorator]
def purge_anonymous(
    self: Any,
    older_than: float | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    shards: int | None = None,
) -> dict[str, Any]:
    """Purge stale guests; ``older_than`` in seconds (default ``ANONAUTH_MAX_AGE``).

    Returns the run's summary with ``"status": "done"`` (a dry run reports its count as
    ``"would_purge"``, with ``"purged": 0``), or ``{"status": "locked"}`` when another
    run holds the lock. ``shards`` (default ``ANONAUTH_PURGE_SHARDS``) above 1 spreads
    the run over that many shard tasks and returns their sum (``"status": "partial"``
    when a shard failed); a ``limit`` keeps the run in one task. Raises ``ValueError``
    for bad input, such as an ``older_than`` not longer than ``ANONAUTH_TOUCH_INTERVAL``
    (it would purge active guests).
    """
    cutoff = _cutoff(older_than)
    shards = conf.PURGE_SHARDS if shards is None else shards
    if shards < 1:
        raise ValueError(f"shards must be positive, not {shards}.")
    lock = PurgeLock()
    if not lock.acquire():
        return {"status": "locked"}
    try:
        ranges = _ranges(shards, cutoff, batch_size, limit)
        if len(ranges) == 1:
            return _purge_here(lock, cutoff, batch_size, limit, dry_run)
        spread = _spread(ranges, cutoff, batch_size, dry_run, lock)
    except BaseException:
        lock.release()
        raise
    if self.request.called_directly:  # a plain call: the shards run here, one by one
        return spread.apply().get()  # type: ignore[no-any-return]
    return self.replace(spread)  # type: ignore[no-any-return]


# Acknowledged once done and redelivered when its worker dies, so the chord completes:
# purging a range again is harmless (what is gone is gone).
@shared_task(  # type: ignore[untyped-decorator]
    name="anonauth.purge_shard", acks_late=True, reject_on_worker_lost=True
)
def purge_shard(
    after: Any,
    upto: Any,
    older_than: float,
    batch_size: int | None = None,
    dry_run: bool = False,
    lock_token: str | None = None,
) -> dict[str, Any]:
    """Purge the stale guests whose primary key lies in ``(after, upto]``, renewing the
    run's lock (``lock_token``) after each batch.

    An error does not propagate (it would lose the other shards' results): the shard
    returns ``"status": "failed"`` with the error and what it purged before it.
    """
    lock = PurgeLock(lock_token)
    done = [PurgeResult(dry_run=dry_run)]

    def progress(result: PurgeResult) -> None:
        done[0] = result
        lock.renew()

    shard = {"shard": [after, upto]}
    try:
        result = purge_guests(
            older_than=timedelta(seconds=older_than),
            batch_size=batch_size,
            dry_run=dry_run,
            progress=progress,
            shard=Shard(after, upto),
        )
    except Exception as error:
        logger.exception("anonauth: purge shard (%r, %r] failed", after, upto)
        return {"status": "failed", "error": repr(error), **shard, **_summary(done[0])}
    return {"status": "done", **shard, **_summary(result)}


@shared_task(name="anonauth.purge_sum")  # type: ignore[untyped-decorator]
def purge_sum(
    shards: list[dict[str, Any]], started: float, lock_token: str | None = None
) -> dict[str, Any]:
    """The sum of the shards' summaries; frees the run's lock. ``"status"`` is
    ``"partial"`` when a shard failed (listed in ``"failed"``), ``"seconds"`` the run's
    wall time and ``"shard_seconds"`` each shard's."""
    PurgeLock(lock_token).release()
    summary = sum_summaries(shards, seconds=time.time() - started)
    observe.purge_spread(summary)
    return summary


def sum_summaries(shards: list[dict[str, Any]], *, seconds: float) -> dict[str, Any]:
    """Add up shard summaries (see :func:`purge_sum`)."""
    total: dict[str, Any] = dict.fromkeys(SUMMED, 0)
    total.update(dry_run=any(s["dry_run"] for s in shards), blocked_by={}, deleted={})
    total["blocked_ids"] = [pk for s in shards for pk in s["blocked_ids"]][:MAX_REPORTED_BLOCKED]
    for summary in shards:
        for name in (*SUMMED, *(("would_purge",) if "would_purge" in summary else ())):
            total[name] = total.get(name, 0) + summary[name]
        for name in ("blocked_by", "deleted"):
            for label, count in summary[name].items():
                total[name][label] = total[name].get(label, 0) + count
    failed = [s for s in shards if s["status"] != "done"]
    status = "partial" if failed else "done"
    total.update(seconds=seconds, shard_seconds=[s["seconds"] for s in shards])
    return {"status": status, "shards": len(shards), "failed": failed, **total}


def _purge_here(
    lock: PurgeLock, cutoff: timedelta, batch_size: int | None, limit: int | None, dry_run: bool
) -> dict[str, Any]:
    """The whole run in this worker (the lock is freed by the caller on error)."""
    result = purge_guests(
        older_than=cutoff, batch_size=batch_size, limit=limit, dry_run=dry_run, progress=lock.renew
    )
    lock.release()
    return {"status": "done", **_summary(result)}


def _ranges(
    shards: int, cutoff: timedelta, batch_size: int | None, limit: int | None
) -> list[Shard]:
    """The run's shards: one when it is not spread (``shards=1`` or a ``limit``), else
    ranges of at least one batch each."""
    if shards == 1 or limit is not None:
        return [Shard()]
    size = conf.PURGE_BATCH_SIZE if batch_size is None else batch_size
    check_arguments(size, limit)  # refused here, not in every shard
    return split(shards, older_than=cutoff, min_size=size)


def _spread(
    ranges: list[Shard],
    cutoff: timedelta,
    batch_size: int | None,
    dry_run: bool,
    lock: PurgeLock,
) -> Any:
    """The chord that purges ``ranges`` in parallel and sums them."""
    options = {"batch_size": batch_size, "dry_run": dry_run, "lock_token": lock.token}
    seconds = cutoff.total_seconds()
    header = [purge_shard.si(_key(r.after), _key(r.upto), seconds, **options) for r in ranges]
    return chord(header, purge_sum.s(time.time(), lock.token))


def _key(pk: Any) -> Any:
    """A primary key as a task argument (JSON): numbers and ``None`` as they are."""
    return pk if pk is None or isinstance(pk, int) else str(pk)


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
