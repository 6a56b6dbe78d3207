"""A new guest's rows in one statement, on PostgreSQL (internal).

A creation writes four rows: the user, its ``Guest`` row, its session (database-backed
engines) and its audit event. On PostgreSQL, :func:`batch` collects them and writes
them with **one statement**: each row's ``INSERT``, as Django's own compiler writes it
(defaults, ``pre_save`` of the fields, adaptation of the values), becomes a
data-modifying ``WITH`` clause of one ``INSERT`` (PostgreSQL runs every clause once, in
the statement's snapshot, and checks the deferred foreign keys at its end). The user's
primary key is drawn from its sequence first, since the session's signed data names it.
With no transaction open, that statement is the creation's only commit: two round trips
(``nextval``, the statement) instead of ``BEGIN``, four ``INSERT`` s and ``COMMIT``.
Inside an open transaction (``ATOMIC_REQUESTS``, the live-guest cap's lock) it runs in
the caller's transaction or savepoint as before.

The rows' ``pre_save`` and ``post_save`` signals are sent as ``Model.save()`` sends
them. Where a project could see a difference, :func:`eligible` says no and every row is
saved by the ORM as before: on other databases, when one of the four models has a
``pre_save`` or ``post_save`` receiver other than anonauth's own (the receiver would
expect to run in the row's transaction), a ``save()`` of its own, parents
(multi-table inheritance), or a primary key that is neither set nor drawn from a
sequence (nor one the database insists on generating itself: ``GENERATED ALWAYS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError, connections, models
from django.db.models.signals import post_save, pre_save
from django.db.models.sql.subqueries import InsertQuery

from anonauth import db

# SQLSTATE of an explicit value for a GENERATED ALWAYS column.
GENERATED_ALWAYS = "428C9"

_current: ContextVar[Batch | None] = ContextVar("anonauth_insert_batch", default=None)
# (alias, table) of user models whose key has no sequence: saved by the ORM from then on.
_no_sequence: set[tuple[str, str]] = set()
# (model, alias, columns) -> the text of its one-row INSERT (see insert_sql).
_texts: dict[tuple[str, str, tuple[str, ...]], str] = {}


class NoSequence(Exception):
    """The user model's key cannot be drawn (no sequence, or a column that takes no value
    but its own): nothing was written."""


class Batch:
    """The rows of one creation, written by :meth:`flush` as one statement."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.rows: list[models.Model] = []
        self.after: list[Callable[[], Any]] = []

    def add(self, instance: models.Model, *, draw_pk: bool) -> None:
        meta = instance._meta
        pre_save.send(
            sender=meta.model, instance=instance, raw=False, using=self.using, update_fields=None
        )
        if instance.pk is None:
            instance.pk = meta.pk.get_pk_value_on_save(instance)
        if instance.pk is None and draw_pk:
            instance.pk = self.draw_pk(type(instance))
        self.rows.append(instance)

    def draw_pk(self, model: type[models.Model]) -> Any:
        sql, params = key_draw(model, self.using)
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"SELECT {sql}", params)
            (value,) = cursor.fetchone()
        if value is None:
            _no_sequence.add((self.using, model._meta.db_table))
            raise NoSequence(model._meta.db_table)
        return value

    def flush(self) -> None:
        if not self.rows:
            return
        connection = connections[self.using]
        clauses, params = [], []
        for number, row in enumerate(self.rows):
            sql, row_params = insert_sql(row, connection)
            clauses.append((f"anonauth_row{number}", sql))
            params.extend(row_params)
        *withs, (_, statement) = clauses
        if withs:
            named = ", ".join(f"{name} AS ({sql})" for name, sql in withs)
            statement = f"WITH {named} {statement}"
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
        except DatabaseError as error:
            if getattr(error.__cause__, "sqlstate", None) != GENERATED_ALWAYS:
                raise
            # The user key's column takes no value but its own (GENERATED ALWAYS AS
            # IDENTITY): nothing was written; the ORM saves this model's rows from now on.
            user_table = self.rows[0]._meta.db_table
            _no_sequence.add((self.using, user_table))
            raise NoSequence(user_table) from error
        for row in self.rows:
            row._state.adding, row._state.db = False, self.using
            post_save.send(
                sender=row._meta.model,
                instance=row,
                created=True,
                update_fields=None,
                raw=False,
                using=self.using,
            )
        for func in self.after:
            db.on_commit(func)


def key_draw(model: type[models.Model], using: str) -> tuple[str, list[Any]]:
    """The SQL expression that draws a new key for ``model`` from its sequence (``NULL``
    when it has none), with its parameters: for a statement that has another job too
    (the live-guest cap's lock)."""
    table, column = model._meta.db_table, model._meta.pk.column
    return "nextval(pg_get_serial_sequence(%s, %s))", [
        connections[using].ops.quote_name(table),
        column,
    ]


def insert_sql(instance: models.Model, connection: Any) -> tuple[str, list[Any]]:
    """The ``INSERT`` that ``instance.save(force_insert=True)`` would run.

    Django's compiler writes it; its text, the same for every row of a model whose values
    are plain (no expression, no field with a placeholder of its own), is kept, and the
    next rows' values are prepared as the compiler prepares them (``pre_save``, then
    ``get_db_prep_save``)."""
    meta = instance._meta
    pk_set = instance.pk is not None
    fields = [
        field
        for field in meta.local_concrete_fields
        if not field.generated and (pk_set or field is not meta.auto_field)
    ]
    key = (meta.label, connection.alias, tuple(field.attname for field in fields))
    sql = _texts.get(key)
    if sql is not None:
        values = [field.pre_save(instance, True) for field in fields]
        if not any(hasattr(value, "resolve_expression") for value in values):
            return sql, [
                field.get_db_prep_save(value, connection=connection)
                for field, value in zip(fields, values, strict=True)
            ]
    query = InsertQuery(type(instance))
    query.insert_values(fields, [instance])
    ((sql, params),) = query.get_compiler(connection=connection).as_sql()
    plain = not any(
        hasattr(field, "get_placeholder")
        or hasattr(getattr(instance, field.attname), "resolve_expression")
        for field in fields
    )
    if plain:
        _texts[key] = sql
    return sql, list(params)


@contextmanager
def batch(enabled: bool) -> Iterator[Batch | None]:
    """Collect the rows :func:`save` is given inside, and write them on a clean exit
    (nothing is written on an error); ``enabled=False`` saves each row as it comes."""
    if not enabled:
        yield None
        return
    current = Batch(db.alias())
    token = _current.set(current)
    try:
        yield current
        current.flush()
    finally:
        _current.reset(token)


def save(instance: models.Model, *, using: str, draw_pk: bool = False) -> None:
    """INSERT ``instance`` on ``using``: in the open batch if it writes there, else now.
    ``draw_pk``: the caller needs its key before the batch is written (the user's)."""
    current = _current.get()
    if current is not None and current.using == using:
        current.add(instance, draw_pk=draw_pk)
    else:
        instance.save(force_insert=True, using=using)


def on_commit(func: Callable[[], Any]) -> None:
    """Run ``func`` once the rows are committed (after the open batch's statement)."""
    current = _current.get()
    if current is not None:
        current.after.append(func)
    else:
        db.on_commit(func)


def pending(instance: models.Model) -> bool:
    """Whether ``instance`` waits in the open batch (not in the database yet)."""
    current = _current.get()
    return current is not None and any(row is instance for row in current.rows)


# Where one statement changes nothing a project can see


def eligible(*model_list: type[models.Model]) -> bool:
    """Whether a creation writing ``model_list`` (the user model first) may use a batch."""
    connection = db.connection()
    if connection.vendor != "postgresql":
        return False
    user_model = model_list[0]
    user_meta = user_model._meta
    if (db.alias(), user_meta.db_table) in _no_sequence:
        return False
    if user_meta.pk is not user_meta.auto_field and not user_meta.pk.has_default():
        return False  # a key neither drawn nor defaulted: the ORM's way, as before
    return all(_plain(model) for model in model_list)


def _plain(model: type[models.Model]) -> bool:
    meta = model._meta
    if meta.parents or meta.pk is None or len(getattr(meta, "pk_fields", [meta.pk])) != 1:
        return False
    if model.save not in (models.Model.save, AbstractBaseUser.save):
        return False
    return not (_foreign_receivers(pre_save, model) or _foreign_receivers(post_save, model))


def _foreign_receivers(signal: Any, model: type[models.Model]) -> bool:
    """Whether ``signal`` has a receiver for ``model`` other than anonauth's own (which
    know a new guest's rows: ``upgrade.end_guest_status_on_password`` skips them)."""
    try:
        sync_receivers, async_receivers = signal._live_receivers(model)
    except (AttributeError, TypeError, ValueError):  # pragma: no cover (another Django)
        return True
    return any(
        getattr(receiver, "__module__", "").partition(".")[0] != "anonauth"
        for receiver in [*sync_receivers, *async_receivers]
    )
