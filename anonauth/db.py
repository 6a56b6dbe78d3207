"""The database, as anonauth uses it (internal).

- **One alias.** anonauth writes to the database the router chooses for
  :class:`~anonauth.models.Guest`; every transaction and every ``on_commit`` callback
  of anonauth goes through :func:`atomic` and :func:`on_commit` here, so they agree.
- **One lock order** on every path that changes a guest (upgrade, link, delete,
  purge): the user row first, then its ``Guest`` row. :func:`lock_guest` takes both
  (and waits); :func:`lock_free_guests` takes both for a batch without waiting. Two
  transactions that need the same guest then queue on the user row and can never
  hold one lock each while waiting for the other.
- **Vendor helpers**: the PostgreSQL advisory lock, the array parameter that stands
  for a long list of ids, and the feature probes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import RawSQL

from anonauth.models import Guest

# First key of anonauth's PostgreSQL advisory locks ("anon").
ADVISORY_NAMESPACE = 0x616E6F6E
# Room left for a statement's other parameters on backends that cap them (SQLite).
PARAM_MARGIN = 16


def alias() -> str:
    """The database anonauth writes to: the router's choice for ``Guest``."""
    return router.db_for_write(Guest)


def connection() -> BaseDatabaseWrapper:
    return connections[alias()]


def atomic() -> AbstractContextManager[Any]:
    """``transaction.atomic`` on anonauth's alias."""
    return transaction.atomic(using=alias())


def on_commit(func: Callable[[], Any]) -> None:
    """Run ``func`` once the current transaction on anonauth's alias commits."""
    transaction.on_commit(func, using=alias())


def users() -> models.QuerySet[Any]:
    """Every user, on anonauth's alias (the base manager: no project filtering)."""
    return get_user_model()._base_manager.using(alias())


def guests() -> models.QuerySet[Guest]:
    return Guest._base_manager.using(alias())


# The lock order: the user row, then the Guest row.


def lock_guest(user_pk: Any) -> bool:
    """Lock the user row, then the ``Guest`` row, of ``user_pk``; return whether it is
    still a guest. Call inside :func:`atomic`; waits for a transaction that holds
    either row (so it sees that transaction's outcome)."""
    return lock_guest_metadata(user_pk) is not None


def lock_guest_metadata(user_pk: Any) -> dict[str, Any] | None:
    """:func:`lock_guest`, returning the guest's metadata (read with the lock, in the
    same query), or ``None`` if ``user_pk`` is no longer a guest."""
    list(users().select_for_update().filter(pk=user_pk).values_list("pk"))
    rows = guests().select_for_update().filter(user_id=user_pk).values_list("metadata", flat=True)
    metadata: dict[str, Any] | None = rows.first()
    return metadata


def lock_free_guests(
    user_pks: Sequence[Any], guest_rows: models.QuerySet[Guest], *, lock: bool = True
) -> list[tuple[Any, str]]:
    """Lock the user rows, then the ``Guest`` rows, of the guests among ``user_pks``
    that nobody else holds (``SKIP LOCKED``): never waits, so a purge cannot deadlock.

    ``guest_rows`` (a filtered ``Guest`` queryset) is the re-check: a guest that
    upgraded or came back meanwhile is not among them. Returns ``(user_pk,
    session_key)`` pairs, in primary-key order. Without ``SKIP LOCKED`` (SQLite, which
    serialises writers anyway) or with ``lock=False`` (a dry run) the rows are read
    without locks.
    """
    ids = id_set(user_pks, get_user_model()._meta.pk)
    locking = lock and supports_skip_locked()
    free: Any = users().filter(pk__in=ids).order_by("pk")
    if locking:
        free = free.select_for_update(skip_locked=True)
    free_ids = list(free.values_list("pk", flat=True))
    rows = guest_rows.filter(user_id__in=id_set(free_ids, Guest._meta.pk)).order_by("user_id")
    if locking:
        rows = rows.select_for_update(skip_locked=True)
    return list(rows.values_list("user_id", "session_key"))


# Vendor helpers


def is_postgresql() -> bool:
    return connection().vendor == "postgresql"


def supports_skip_locked() -> bool:
    return bool(connection().features.has_select_for_update_skip_locked)


def advisory_xact_lock(name: str, *, also: tuple[str, list[Any]] | None = None) -> Any:
    """Hold a PostgreSQL advisory lock on ``name`` until the transaction ends (elsewhere
    nothing: SQLite serialises writers, and unique constraints settle the rest).

    ``also``: an SQL expression and its parameters, evaluated by the same statement; its
    value is returned (``None`` without one, or off PostgreSQL)."""
    if not is_postgresql():
        return None
    sql = "pg_advisory_xact_lock(%s, hashtext(%s))"
    params: list[Any] = [ADVISORY_NAMESPACE, name]
    if also is not None:
        sql, params = f"{sql}, {also[0]}", params + also[1]
    with connection().cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        row = cursor.fetchone()
    return row[1] if also is not None else None


def id_set(values: Sequence[Any], field: models.Field[Any, Any]) -> Any:
    """``values`` for an ``__in`` lookup on ``field``. On PostgreSQL one array parameter
    (``IN (SELECT unnest(%s))``): a literal list of thousands of ids costs more to build,
    send and plan than most statements take to run."""
    if not is_postgresql():
        return list(values)
    db_type = field.rel_db_type(connection())
    return RawSQL(f"SELECT unnest(%s::{db_type}[])", (list(values),))


def max_batch(size: int) -> int:
    """``size``, capped to fit the backend's limit on a statement's parameters."""
    cap = connection().features.max_query_params
    return size if cap is None else max(1, min(size, cap - PARAM_MARGIN))
