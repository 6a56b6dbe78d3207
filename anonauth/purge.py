"""Purging stale guests: :func:`purge_guests` deletes guests not seen for a while.

The work goes in batches of one transaction each:

1. Select the next stale guests by primary key (keyset pagination, so memory is
   bounded by the batch), without locking anything. Then, where the database supports
   it, lock their user rows and then their ``Guest`` rows (the project's one lock
   order, :func:`anonauth.db.lock_free_guests`) with ``FOR UPDATE SKIP LOCKED``: a
   guest being upgraded or linked right now is passed over, and the purge never waits
   for a lock another transaction holds (so it cannot deadlock with one). Reading the
   ``Guest`` rows again once the user rows are locked is the re-check: a guest that
   upgraded (its ``Guest`` row is gone) or came back (a fresh ``last_seen``) is kept.
2. Keep, and report as blocked, the users that can sign in another way than their
   guest session even though a ``Guest`` row points at them (a usable password, staff,
   superuser: read from the locked user rows). Keep the guests
   ``ANONAUTH_PURGE_SPARE`` spares and those a ``PROTECT``,
   ``RESTRICT`` or ``DO_NOTHING`` relation (with its database constraint) blocks: the
   latter are reported, so one such row never makes every run fail.
3. Delete the rest set-based with an :class:`anonauth.deletion.Plan` (one statement
   per relation reached from the user model, planned once per run), then the database
   rows of their sessions.
4. After the commit, cached sessions are dropped and ``guests_purged`` is sent.

Like ``QuerySet.delete()``'s fast path, the set-based deletion sends no
``pre_delete``/``post_delete`` signals: listen to ``guests_purged``. Relation graphs
the statements cannot express (a ``CASCADE`` cycle, multi-table inheritance below the
user, generic relations, custom ``on_delete`` handlers) fall back to Django's
collector for each batch: correct, only slower.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from anonauth import db, observe, sessions, signals
from anonauth.conf import conf
from anonauth.deletion import Plan
from anonauth.models import Guest

logger = logging.getLogger("anonauth.purge")

# The result keeps this many blocked guests' ids (the count is always complete).
MAX_REPORTED_BLOCKED = 100

Progress = Callable[["PurgeResult"], None]
SpareHook = Callable[[QuerySet[Any]], Iterable[Any]]
# A batch's guests: (user primary key, session key) pairs.
Batch = list[tuple[Any, str]]


@dataclass
class PurgeResult:
    """What a purge did (or, with ``dry_run``, would do).

    ``purged`` guests were deleted; ``spared`` were kept by ``ANONAUTH_PURGE_SPARE``;
    ``blocked`` were kept, counted per reason in ``blocked_by`` (the first ids in
    ``blocked_ids``): a protecting relation points at them (``PROTECT``, ``RESTRICT``,
    ``DO_NOTHING``: the relation's label, ``"app_label.Model.field"``), or the user can
    sign in another way, so it is never deleted as a guest whatever its ``Guest`` row
    says: ``"superuser"``, ``"staff"`` (``is_superuser``/``is_staff``, when the user
    model has them), ``"usable_password"`` (its ``password`` does not start with
    Django's unusable prefix, ``!``); the first that applies names it. ``deleted``
    counts the rows deleted per model label, ``sessions`` the sessions dropped.
    """

    dry_run: bool = False
    examined: int = 0
    purged: int = 0
    spared: int = 0
    blocked: int = 0
    blocked_by: dict[str, int] = field(default_factory=dict)
    blocked_ids: list[Any] = field(default_factory=list)
    sessions: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The result as JSON-friendly data (what the Celery task returns)."""
        data = asdict(self)
        data["blocked_ids"] = [pk if isinstance(pk, int) else str(pk) for pk in self.blocked_ids]
        return data

    def add_examined(self, examined: int, *, spared: int, purged: int) -> None:
        """Count a batch's guests: all examined, the spared and the purged among them."""
        self.examined += examined
        self.spared += spared
        self.purged += purged

    def add_blocked(self, blocked: dict[Any, str]) -> None:
        """Count guests kept by protecting relations (``{user_pk: relation label}``)."""
        self.blocked += len(blocked)
        for pk, label in blocked.items():
            self.blocked_by[label] = self.blocked_by.get(label, 0) + 1
            if len(self.blocked_ids) < MAX_REPORTED_BLOCKED:
                self.blocked_ids.append(pk)

    def add_deleted(self, deleted: dict[str, int]) -> None:
        """Count deleted rows (``{model label: rows}``)."""
        for label, rows in deleted.items():
            self.deleted[label] = self.deleted.get(label, 0) + rows


def purge_guests(
    *,
    older_than: timedelta | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    guests: QuerySet[Guest] | None = None,
    shard: Shard | None = None,
) -> PurgeResult:
    """Delete guests whose ``last_seen`` is older than ``older_than``, with their data.

    ``older_than`` defaults to ``ANONAUTH_MAX_AGE``, ``batch_size`` (guests per
    transaction) to ``ANONAUTH_PURGE_BATCH_SIZE``; ``limit`` caps the guests deleted.
    ``dry_run`` counts and deletes nothing. ``progress(result)`` is called after each
    batch with the running totals; ``guests`` (a ``Guest`` queryset) narrows the purge
    to the stale ones among them, ``shard`` (from :func:`split_stale_guests`) to those
    in its primary-key range. Sends ``guests_purged(user_ids)`` after each batch
    commits.
    """
    older_than = conf.MAX_AGE if older_than is None else older_than
    size = conf.PURGE_BATCH_SIZE if batch_size is None else batch_size
    check_arguments(size, limit)
    run = _Run.start(older_than=older_than, dry_run=dry_run, among=guests, shard=shard)
    return run.all_batches(size, limit, progress)


def count_stale_guests(*, older_than: timedelta | None = None) -> int:
    """How many guests a purge with ``older_than`` would examine (one COUNT)."""
    older_than = conf.MAX_AGE if older_than is None else older_than
    return Guest._base_manager.filter(last_seen__lt=timezone.now() - older_than).count()


@dataclass(frozen=True)
class Shard:
    """The guests whose user primary key lies in ``(after, upto]``; ``None`` leaves that
    end open, so the first and last shards also take guests created since the split."""

    after: Any = None
    upto: Any = None

    def narrow(self, guests: QuerySet[Guest]) -> QuerySet[Guest]:
        """``guests`` within this shard's range (a range on the primary key's index)."""
        if self.after is not None:
            guests = guests.filter(user_id__gt=self.after)
        if self.upto is not None:
            guests = guests.filter(user_id__lte=self.upto)
        return guests


def split_stale_guests(
    shards: int, *, older_than: timedelta | None = None, min_size: int = 1
) -> list[Shard]:
    """Split the stale guests into at most ``shards`` adjacent primary-key ranges of
    about the same number of guests, each of at least ``min_size`` guests (so a small
    purge is not spread thin). The ranges never overlap and, together, cover every key:
    each stale guest is in exactly one. Works for any ordered primary key; one query to
    count, then one indexed ``OFFSET`` lookup per boundary.
    """
    if shards < 1 or min_size < 1:
        raise ValueError(f"shards and min_size must be positive, not {shards} and {min_size}.")
    older_than = conf.MAX_AGE if older_than is None else older_than
    stale = db.guests().filter(last_seen__lt=timezone.now() - older_than)
    count = stale.count()
    shards = max(1, min(shards, count // min_size))
    keys = stale.order_by("user_id").values_list("user_id", flat=True)
    # A guest deleted meanwhile may leave a boundary missing or repeated: drop those.
    bounds = [key for i in range(1, shards) for key in keys[count * i // shards - 1 :][:1]]
    edges = [None, *dict.fromkeys(bounds), None]
    return [Shard(after, upto) for after, upto in itertools.pairwise(edges)]


def check_arguments(size: int, limit: int | None) -> None:
    """Raise ``ValueError`` for a batch size or limit :func:`purge_guests` refuses."""
    if size < 1:
        raise ValueError(f"batch_size must be positive, not {size}.")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}.")


# One run


@dataclass(frozen=True)
class _Run:
    plan: Plan
    sessions: sessions.SessionCleanup
    spare: SpareHook | None
    cutoff: datetime
    dry_run: bool
    among: QuerySet[Guest] | None = None
    shard: Shard = Shard()

    @classmethod
    def start(
        cls,
        *,
        older_than: timedelta,
        dry_run: bool,
        among: QuerySet[Guest] | None = None,
        shard: Shard | None = None,
    ) -> _Run:
        return cls(
            plan=_plan(),
            sessions=sessions.SessionCleanup.from_settings(),
            spare=None if conf.PURGE_SPARE is None else import_string(conf.PURGE_SPARE),
            cutoff=timezone.now() - older_than,
            dry_run=dry_run,
            among=among,
            shard=shard or Shard(),
        )

    def all_batches(self, size: int, limit: int | None, progress: Progress | None) -> PurgeResult:
        """Purge batch after batch until no stale guest is left or ``limit`` is reached."""
        result = PurgeResult(dry_run=self.dry_run)
        started = time.monotonic()
        after: Any = self.shard.after
        while limit is None or result.purged < limit:
            wanted = size if limit is None else min(size, limit - result.purged)
            before, batch_started = replace(result), time.monotonic()
            after = self.batch(after, db.max_batch(wanted), result)
            result.seconds = time.monotonic() - started
            if after is None:
                break
            observe.purge_batch(self.shard, before, result, time.monotonic() - batch_started)
            if progress is not None:
                progress(result)
        observe.purge_run(self.shard, result)
        return result

    def batch(self, after: Any, size: int, result: PurgeResult) -> Any:
        """Purge one batch in one transaction; return the last candidate examined (None:
        done). Candidates locked by another transaction are passed over."""
        with db.atomic():
            candidates = self.candidates(after, size)
            if not candidates:
                return None
            self.purge(db.lock_free_guests(candidates, self.stale(), lock=not self.dry_run), result)
        result.batches += 1
        return candidates[-1]

    def stale(self) -> QuerySet[Guest]:
        """The stale guests (among those the run was given)."""
        guests = self.shard.narrow(db.guests().filter(last_seen__lt=self.cutoff))
        if self.among is not None:
            guests = guests.filter(pk__in=self.among.order_by().values("pk"))
        return guests

    def candidates(self, after: Any, size: int) -> list[Any]:
        """The user ids of the next ``size`` stale guests after ``after``, not locked."""
        guests = self.stale() if after is None else self.stale().filter(user_id__gt=after)
        return list(guests.order_by("user_id").values_list("user_id", flat=True)[:size])

    def purge(self, batch: Batch, result: PurgeResult) -> None:
        """Purge a batch's locked guests (a dry run only counts them)."""
        if not batch:
            return
        ids = [pk for pk, _key in batch]
        blocked = _signing_in_otherwise(ids)
        spared = self.spared(_without(ids, blocked))
        blocked.update(self.plan.blocked(_without(ids, {*spared, *blocked})))
        doomed = _without(ids, {*spared, *blocked})
        if doomed and not self.dry_run:
            blocked.update(self.delete(batch, doomed, result))
            doomed = _without(doomed, blocked)
        result.add_examined(len(ids), spared=len(spared), purged=len(doomed))
        result.add_blocked(blocked)
        _warn_blocked(blocked)

    def spared(self, ids: list[Any]) -> set[Any]:
        """The guests ``ANONAUTH_PURGE_SPARE`` keeps: a queryset or any iterable of
        users or primary keys, chosen among the batch's users."""
        if self.spare is None:
            return set()
        kept = self.spare(db.users().filter(pk__in=ids))
        if isinstance(kept, QuerySet):
            return set(kept.values_list("pk", flat=True))
        return {getattr(user, "pk", user) for user in kept}

    def delete(self, batch: Batch, doomed: list[Any], result: PurgeResult) -> dict[Any, str]:
        """Delete the doomed guests, their data and their sessions; return the guests
        the deletion found blocked after all (they stay)."""
        deletion = self.plan.delete(doomed)
        gone = [pk for pk in doomed if pk not in deletion.blocked]
        self.forget_sessions(batch, set(gone), result)
        result.add_deleted(deletion.rows)
        self.notify(gone)
        return deletion.blocked

    def forget_sessions(self, batch: Batch, gone: set[Any], result: PurgeResult) -> None:
        keys = [key for pk, key in batch if key and pk in gone]
        result.sessions += self.sessions.delete_rows(keys)
        if keys:
            db.on_commit(functools.partial(self.sessions.drop_after_commit, keys))

    def notify(self, user_ids: list[Any]) -> None:
        signals.send_after_commit(signals.guests_purged, get_user_model(), user_ids=user_ids)


def _plan() -> Plan:
    plan = Plan.build(get_user_model())
    if plan.fallback is not None:
        logger.info("anonauth: the purge uses Django's collector: %s", plan.fallback)
    return plan


def _signing_in_otherwise(ids: list[Any]) -> dict[Any, str]:
    """The users among ``ids`` that can sign in another way than a guest session, each
    with the first reason that applies: ``superuser``, ``staff``, ``usable_password``
    (one query on the user rows, locked by then)."""
    model = get_user_model()
    fields = {f.name for f in model._meta.concrete_fields}
    flags = [name for name in ("is_superuser", "is_staff") if name in fields]
    conditions = [Q(**{name: True}) for name in flags]
    if "password" in fields:
        conditions.append(~Q(password__startswith=UNUSABLE_PASSWORD_PREFIX))
    can_sign_in = reduce(or_, conditions, Q(pk__in=[]))  # no such field: nobody
    users = db.users().filter(pk__in=db.id_set(ids, model._meta.pk))
    found: dict[Any, str] = {}
    for pk, *values in users.filter(can_sign_in).values_list("pk", *flags):
        raised = [name for name, value in zip(flags, values, strict=True) if value]
        found[pk] = raised[0].removeprefix("is_") if raised else "usable_password"
    return found


def _without(ids: list[Any], excluded: Container[Any]) -> list[Any]:
    return [pk for pk in ids if pk not in excluded]


def _warn_blocked(blocked: dict[Any, str]) -> None:
    if blocked:
        logger.warning(
            "anonauth: kept %d stale guests that other data protects: %s",
            len(blocked),
            ", ".join(sorted(set(blocked.values()))),
        )
