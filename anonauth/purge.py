"""Purging stale guests: :func:`purge_guests` deletes guests not seen for a while.

The work goes in batches of one transaction each:

1. Select the next stale guests by primary key (keyset pagination, so memory is
   bounded by the batch). Where the database supports it their ``Guest`` rows, then
   their user rows, are locked with ``FOR UPDATE SKIP LOCKED``: a guest being upgraded
   or linked right now is passed over, and the purge never waits for a lock another
   transaction holds (so it cannot deadlock with one). Selecting inside the
   transaction is the re-check: a guest that upgraded (its ``Guest`` row is gone) or
   came back (a fresh ``last_seen``) is not selected.
2. Keep the guests ``ANONAUTH_PURGE_SPARE`` spares and those a ``PROTECT`` or
   ``RESTRICT`` relation blocks (the latter are reported).
3. Delete the rest set-based: one statement per relation reached from the user model
   (a ``CASCADE`` chain such as cart -> cart items is followed through subqueries,
   ``SET_NULL``/``SET_DEFAULT``/``SET()`` become one UPDATE), then their sessions, then
   the users. The statements are planned once per run from the models' metadata.
4. After the commit, cached sessions are dropped and ``guests_purged`` is sent.

Like ``QuerySet.delete()``'s fast path, the set-based deletion sends no
``pre_delete``/``post_delete`` signals: listen to ``guests_purged``. Relation graphs
the statements cannot express (a ``CASCADE`` cycle, multi-table inheritance below the
user, generic relations, custom ``on_delete`` handlers) fall back to Django's
collector for each batch: correct, only slower.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieSessionStore
from django.core.cache import caches
from django.db import connections, models, router, transaction
from django.db.models import ProtectedError, QuerySet, RestrictedError
from django.db.models.deletion import get_candidate_relations_to_delete
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.module_loading import import_string

from anonauth import signals
from anonauth.conf import conf
from anonauth.models import Guest

logger = logging.getLogger("anonauth")

# The result keeps this many blocked guests' ids (the count is always complete).
MAX_REPORTED_BLOCKED = 100
# Deeper CASCADE chains are left to Django's collector.
MAX_DEPTH = 8
# Room left for a statement's other parameters on backends that cap them (SQLite).
PARAM_MARGIN = 16

Progress = Callable[["PurgeResult"], None]


@dataclass
class PurgeResult:
    """What a purge did (or, with ``dry_run``, would do).

    ``purged`` guests were deleted; ``spared`` were kept by ``ANONAUTH_PURGE_SPARE``;
    ``blocked`` were kept because a protecting relation points at them (counted per
    relation in ``blocked_by``, the first ids in ``blocked_ids``). ``deleted`` counts the
    rows deleted per model label, ``sessions`` the sessions dropped.
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

    def _block(self, blocked: dict[Any, str]) -> None:
        self.blocked += len(blocked)
        for pk, label in blocked.items():
            self.blocked_by[label] = self.blocked_by.get(label, 0) + 1
            if len(self.blocked_ids) < MAX_REPORTED_BLOCKED:
                self.blocked_ids.append(pk)

    def _count(self, deleted: dict[str, int]) -> None:
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
) -> PurgeResult:
    """Delete guests whose ``last_seen`` is older than ``older_than``, with their data.

    ``older_than`` defaults to ``ANONAUTH_MAX_AGE``, ``batch_size`` (guests per
    transaction) to ``ANONAUTH_PURGE_BATCH_SIZE``; ``limit`` caps the guests deleted.
    ``dry_run`` counts and deletes nothing. ``progress(result)`` is called after each
    batch with the running totals; ``guests`` (a ``Guest`` queryset) narrows the purge
    to the stale ones among them. Sends ``guests_purged(user_ids)`` after each batch
    commits.
    """
    older_than = conf.MAX_AGE if older_than is None else older_than
    size = conf.PURGE_BATCH_SIZE if batch_size is None else batch_size
    if size < 1:
        raise ValueError(f"batch_size must be positive, not {size}.")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}.")
    run = _Run.start(dry_run=dry_run, among=guests)
    cutoff = timezone.now() - older_than
    result = PurgeResult(dry_run=dry_run)
    started = time.monotonic()
    after: Any = None
    while limit is None or result.purged < limit:
        wanted = size if limit is None else min(size, limit - result.purged)
        after = run.batch(cutoff, after, run.capped(wanted), result)
        if after is None:
            break
        result.seconds = time.monotonic() - started
        if progress is not None:
            progress(result)
    result.seconds = time.monotonic() - started
    return result


def count_stale_guests(*, older_than: timedelta | None = None) -> int:
    """How many guests a purge with ``older_than`` would examine (one COUNT)."""
    older_than = conf.MAX_AGE if older_than is None else older_than
    return Guest._base_manager.filter(last_seen__lt=timezone.now() - older_than).count()


# The deletion plan: the relations reached from the user model, planned once per run.


class Fallback(Exception):
    """The relation graph needs Django's collector (the message says why)."""


@dataclass(frozen=True)
class Relation:
    """A foreign key reached from the user model, through ``CASCADE`` relations."""

    fk: models.ForeignKey[Any, Any]
    parent: Relation | None
    on_delete: Callable[..., Any]

    @property
    def model(self) -> type[models.Model]:
        return self.fk.model

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.fk.name}"

    @property
    def path(self) -> str:
        """The lookup from this relation's model to the user, e.g. ``cart__owner``."""
        return self.fk.name if self.parent is None else f"{self.fk.name}__{self.parent.path}"

    def rows(self, user_ids: Any, using: str) -> QuerySet[Any]:
        """This relation's rows belonging to ``user_ids`` (a list or a subquery), as one
        nested subquery."""
        target = self.fk.target_field
        if self.parent is None and target.primary_key:
            parents: Any = user_ids
        elif self.parent is None:
            user_model = self.fk.related_model
            parents = user_model._base_manager.using(using).filter(pk__in=user_ids)
            parents = parents.values(target.attname)
        else:
            parents = self.parent.rows(user_ids, using).values(target.attname)
        return self.model._base_manager.using(using).filter(**{f"{self.fk.attname}__in": parents})

    def update_value(self) -> Any:
        """The value ``SET_NULL``, ``SET_DEFAULT`` or ``SET(value)`` writes."""
        if self.on_delete is models.SET_NULL:
            return None
        if self.on_delete is models.SET_DEFAULT:
            return self.fk.get_default()
        value = self.on_delete.deconstruct()[1][0]  # type: ignore[attr-defined]
        return value() if callable(value) else value


@dataclass(frozen=True)
class Plan:
    """Ordered statements deleting a batch of users and everything that cascades."""

    user_model: type[models.Model]
    steps: tuple[Relation, ...] = ()  # children before parents
    blockers: tuple[Relation, ...] = ()
    fallback: str | None = None

    @classmethod
    def build(cls, user_model: type[models.Model]) -> Plan:
        steps: list[Relation] = []
        blockers: list[Relation] = []
        try:
            _check_expressible(user_model)
            _walk(user_model, None, (user_model,), steps, blockers)
        except Fallback as reason:
            logger.info("anonauth: the purge uses Django's collector: %s", reason)
            return cls(user_model, blockers=tuple(blockers), fallback=str(reason))
        return cls(user_model, tuple(steps), tuple(blockers))

    def id_set(self, user_ids: Sequence[Any], using: str) -> Any:
        """The batch's ids for ``__in`` lookups. On PostgreSQL: one array parameter
        (``IN (SELECT unnest(%s))``), as a literal list of thousands of ids costs more to
        build, send and plan than most of the statements take to run."""
        return value_set(user_ids, self.user_model._meta.pk, using)

    def blocked(self, user_ids: Sequence[Any], using: str) -> dict[Any, str]:
        """The users a protecting relation keeps, each with the relation's label."""
        blocked: dict[Any, str] = {}
        ids = self.id_set(user_ids, using) if self.blockers else ()
        for relation in self.blockers:
            lookup = f"{relation.path}__pk"
            rows = relation.model._base_manager.using(using).filter(**{f"{lookup}__in": ids})
            for pk in rows.order_by().values_list(lookup, flat=True).distinct():
                blocked.setdefault(pk, relation.label)
        return blocked

    def delete(self, user_ids: Sequence[Any], using: str) -> tuple[dict[str, int], dict[Any, str]]:
        """Delete the users and what cascades from them.

        Returns the rows deleted per model label, and the users that turned out to be
        blocked (only the collector fallback finds more than :meth:`blocked` did).
        """
        if self.fallback is not None:
            return _collector_delete(self.user_model, user_ids, using)
        deleted: dict[str, int] = {}
        ids = self.id_set(user_ids, using)
        for step in self.steps:
            rows = step.rows(ids, using)
            if step.on_delete is models.CASCADE:
                _add(deleted, step.model._meta.label, rows._raw_delete(using))
            else:
                rows.update(**{step.fk.name: step.update_value()})
        users = self.user_model._base_manager.using(using).filter(pk__in=ids)
        _add(deleted, self.user_model._meta.label, users._raw_delete(using))
        return deleted, {}


def value_set(values: Sequence[Any], field: models.Field[Any, Any], using: str) -> Any:
    """``values`` for an ``__in`` lookup on ``field``: one array parameter on PostgreSQL."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return list(values)
    db_type = field.rel_db_type(connection)
    return RawSQL(f"SELECT unnest(%s::{db_type}[])", (list(values),))


def _check_expressible(model: type[models.Model]) -> None:
    if model._meta.parents:
        raise Fallback(f"{model._meta.label} inherits from a concrete model")
    if any(hasattr(f, "bulk_related_objects") for f in model._meta.private_fields):
        raise Fallback(f"{model._meta.label} has a generic relation")


def _walk(
    model: type[models.Model],
    parent: Relation | None,
    chain: tuple[type[models.Model], ...],
    steps: list[Relation],
    blockers: list[Relation],
) -> None:
    """Add the statements for what points at ``model``, depth first, children first."""
    for related in get_candidate_relations_to_delete(model._meta):
        fk: models.ForeignKey[Any, Any] = related.field  # type: ignore[attr-defined]
        on_delete = fk.remote_field.on_delete or models.DO_NOTHING
        relation = Relation(fk, parent, on_delete)
        if on_delete is models.CASCADE:
            _cascade(relation, chain, steps, blockers)
        elif on_delete in (models.PROTECT, models.RESTRICT):
            blockers.append(relation)
        elif on_delete in (models.SET_NULL, models.SET_DEFAULT) or hasattr(
            on_delete, "deconstruct"
        ):
            steps.append(relation)
        elif on_delete is not models.DO_NOTHING:
            raise Fallback(f"{relation.label} has a custom on_delete")


def _cascade(
    relation: Relation,
    chain: tuple[type[models.Model], ...],
    steps: list[Relation],
    blockers: list[Relation],
) -> None:
    model = relation.model
    if model in chain:
        raise Fallback(f"{relation.label} cascades in a cycle")
    if len(chain) > MAX_DEPTH:
        raise Fallback(f"{relation.label} cascades more than {MAX_DEPTH} levels deep")
    _check_expressible(model)
    _walk(model, relation, (*chain, model), steps, blockers)
    steps.append(relation)


def _collector_delete(
    user_model: type[models.Model], user_ids: Sequence[Any], using: str
) -> tuple[dict[str, int], dict[Any, str]]:
    """Delete through Django's collector; one user at a time if something protects."""
    users = user_model._base_manager.using(using)
    try:
        return dict(users.filter(pk__in=user_ids).delete()[1]), {}
    except (ProtectedError, RestrictedError):
        pass  # raised while collecting: nothing was deleted yet
    deleted: dict[str, int] = {}
    blocked: dict[Any, str] = {}
    for pk in user_ids:
        try:
            with transaction.atomic(using=using):
                for label, rows in users.filter(pk=pk).delete()[1].items():
                    _add(deleted, label, rows)
        except (ProtectedError, RestrictedError) as error:
            blocked[pk] = _protecting_label(error)
    return deleted, blocked


def _protecting_label(error: ProtectedError | RestrictedError) -> str:
    objects = (
        error.protected_objects if isinstance(error, ProtectedError) else error.restricted_objects
    )
    first = next(iter(objects), None)
    return "?" if first is None else first._meta.label


def _add(counts: dict[str, int], label: str, rows: int) -> None:
    if rows:
        counts[label] = counts.get(label, 0) + rows


# Sessions


@dataclass(frozen=True)
class Sessions:
    """Deletes sessions by key for the configured ``SESSION_ENGINE``.

    Database-backed engines (``db``, ``cached_db``) lose their rows inside the batch's
    transaction; cache-backed ones (``cache``, ``cached_db``) lose their cache entries
    after it commits; any other server-side engine (``file``) deletes key by key after
    the commit. Cookie-stored sessions (``signed_cookies``) are out of reach, and
    harmless: they name a user that no longer exists.
    """

    store: type[Any]
    model: type[models.Model] | None
    cache_prefix: str | None

    @classmethod
    def from_settings(cls) -> Sessions:
        store = import_module(settings.SESSION_ENGINE).SessionStore
        model = store.get_model_class() if issubclass(store, DbSessionStore) else None
        return cls(store, model, getattr(store, "cache_key_prefix", None))

    @property
    def per_key(self) -> bool:
        return (
            self.model is None
            and self.cache_prefix is None
            and not issubclass(self.store, CookieSessionStore)
        )

    def delete_rows(self, keys: Sequence[str]) -> int:
        """Delete the database rows of ``keys`` (inside the batch's transaction) and
        return how many sessions go."""
        if self.model is not None:
            using = router.db_for_write(self.model)
            key_field = self.model._meta.get_field("session_key")
            in_keys = value_set(keys, key_field, using)  # type: ignore[arg-type]
            sessions = self.model._base_manager.using(using).filter(session_key__in=in_keys)
            return sessions._raw_delete(using) if keys else 0
        return len(keys) if self.cache_prefix is not None or self.per_key else 0

    def drop_after_commit(self, keys: Sequence[str]) -> None:
        """Delete what the engine keeps outside the database (after the commit)."""
        if self.cache_prefix is not None:
            cache = caches[settings.SESSION_CACHE_ALIAS]
            cache.delete_many([self.cache_prefix + key for key in keys])
        elif self.per_key:
            for key in keys:
                self.store().delete(key)


# One run


@dataclass(frozen=True)
class _Run:
    plan: Plan
    sessions: Sessions
    spare: Callable[[QuerySet[Any]], Iterable[Any]] | None
    using: str
    dry_run: bool
    among: QuerySet[Guest] | None = None

    @classmethod
    def start(cls, *, dry_run: bool, among: QuerySet[Guest] | None = None) -> _Run:
        spare = None if conf.PURGE_SPARE is None else import_string(conf.PURGE_SPARE)
        return cls(
            plan=Plan.build(get_user_model()),
            sessions=Sessions.from_settings(),
            spare=spare,
            using=router.db_for_write(Guest),
            dry_run=dry_run,
            among=among,
        )

    def capped(self, size: int) -> int:
        """Keep a batch's id list within the backend's parameter limit (SQLite: 999)."""
        cap = connections[self.using].features.max_query_params
        return size if cap is None else max(1, min(size, cap - PARAM_MARGIN))

    def batch(self, cutoff: Any, after: Any, size: int, result: PurgeResult) -> Any:
        """Purge one batch in one transaction; return the last id examined (None: done)."""
        with transaction.atomic(using=self.using):
            candidates = self.candidates(cutoff, after, size)
            if not candidates:
                return None
            self.purge(self.lock_users(candidates), result)
        result.batches += 1
        return candidates[-1][0]

    def candidates(self, cutoff: Any, after: Any, size: int) -> list[tuple[Any, str]]:
        """The next stale guests after ``after``, locked unless this is a dry run."""
        guests = Guest._base_manager.using(self.using).filter(last_seen__lt=cutoff)
        if after is not None:
            guests = guests.filter(user_id__gt=after)
        if self.among is not None:
            guests = guests.filter(pk__in=self.among.order_by().values("pk"))
        guests = guests.order_by("user_id")
        if self.locking:
            guests = guests.select_for_update(skip_locked=True)
        return list(guests.values_list("user_id", "session_key")[:size])

    @property
    def locking(self) -> bool:
        skip_locked = connections[self.using].features.has_select_for_update_skip_locked
        return skip_locked and not self.dry_run

    def lock_users(self, candidates: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
        """Lock the candidates' user rows too, passing over those locked already.

        An upgrade locks the user row and then deletes the guest row; were the purge to
        hold the guest row and then wait for the user row, each would wait for the
        other. Locking both before deleting anything (and skipping what is taken) means
        the purge never waits for either: the upgrade waits, or is passed over.
        """
        if not self.locking:
            return candidates
        users = get_user_model()._base_manager.using(self.using)
        ids = self.plan.id_set([pk for pk, _key in candidates], self.using)
        free = set(
            users.filter(pk__in=ids)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        return [(pk, key) for pk, key in candidates if pk in free]

    def purge(self, candidates: list[tuple[Any, str]], result: PurgeResult) -> None:
        if not candidates:
            return
        ids = [pk for pk, _key in candidates]
        spared = self.spared(ids)
        blocked = self.plan.blocked([pk for pk in ids if pk not in spared], self.using)
        doomed = [pk for pk in ids if pk not in spared and pk not in blocked]
        if doomed and not self.dry_run:
            deleted, late_blocked = self.plan.delete(doomed, self.using)
            blocked.update(late_blocked)
            doomed = [pk for pk in doomed if pk not in late_blocked]
            self.forget_sessions(candidates, set(doomed), result)
            result._count(deleted)
            self.notify(doomed)
        result.examined += len(ids)
        result.spared += len(spared)
        result.purged += len(doomed)
        result._block(blocked)
        if blocked:
            logger.warning(
                "anonauth: kept %d stale guests that other data protects: %s",
                len(blocked),
                ", ".join(sorted(set(blocked.values()))),
            )

    def spared(self, ids: list[Any]) -> set[Any]:
        """The guests ``ANONAUTH_PURGE_SPARE`` keeps: a queryset or any iterable of
        users or primary keys, chosen among the batch's users."""
        if self.spare is None:
            return set()
        users = get_user_model()._base_manager.using(self.using).filter(pk__in=ids)
        kept = self.spare(users)
        if isinstance(kept, QuerySet):
            return set(kept.values_list("pk", flat=True))
        return {getattr(user, "pk", user) for user in kept}

    def forget_sessions(
        self, candidates: list[tuple[Any, str]], doomed: set[Any], result: PurgeResult
    ) -> None:
        keys = [key for pk, key in candidates if key and pk in doomed]
        result.sessions += self.sessions.delete_rows(keys)
        if keys:
            transaction.on_commit(
                functools.partial(self.sessions.drop_after_commit, keys), using=self.using
            )

    def notify(self, user_ids: list[Any]) -> None:
        signals.send_after_commit(signals.guests_purged, get_user_model(), user_ids=user_ids)
