"""anonauth.inserts: a creation's rows in one statement on PostgreSQL, and where it must
not be used (what a project could see). The creation's own statements and failure
points are in test_creation_commit.py."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection, connections, models
from django.db.models import Value
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext, isolate_apps

from anonauth import inserts
from anonauth.models import AuditEvent, Guest
from anonauth.test import connected

pytestmark = pytest.mark.django_db(transaction=True)
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the batch is PostgreSQL's"
)


def written() -> list[models.Model]:
    return [get_user_model(), Guest, Session, AuditEvent]


def test_only_postgresql_batches() -> None:
    assert inserts.eligible(*written()) is (connection.vendor == "postgresql")


def test_one_row_is_one_plain_insert() -> None:
    with CaptureQueriesContext(connection) as queries, inserts.batch(True):
        inserts.save(AuditEvent(kind=AuditEvent.CREATED), using="default")
        assert not AuditEvent.objects.exists()  # waits for the end of the batch
    assert [q["sql"].split()[0] for q in queries.captured_queries][-1] == "INSERT"
    assert AuditEvent.objects.get().kind == AuditEvent.CREATED


@on_postgresql
def test_rows_are_one_statement_and_nothing_on_an_error() -> None:
    with CaptureQueriesContext(connection) as queries, inserts.batch(True):
        for kind in (AuditEvent.CREATED, AuditEvent.UPGRADED):
            inserts.save(AuditEvent(kind=kind), using="default")
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("WITH anonauth_row0 AS (INSERT")
    assert sorted(AuditEvent.objects.values_list("kind", flat=True)) == ["created", "upgraded"]

    def failing_creation() -> None:
        with inserts.batch(True):
            inserts.save(AuditEvent(kind=AuditEvent.LINKED), using="default")
            raise RuntimeError("the creation failed before its rows were written")

    with pytest.raises(RuntimeError):
        failing_creation()
    assert AuditEvent.objects.count() == 2  # the batch wrote nothing


def test_the_kept_text_gets_each_rows_values_and_expressions_are_compiled() -> None:
    inserts._texts.clear()
    saved: list[Any] = []

    def receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        saved.append((instance.count, created, instance._state.adding))

    with connected(post_save, receiver, sender=AuditEvent):
        for count in (3, 4, Value(5)):  # a batch of one row each: any database
            with inserts.batch(True):
                inserts.save(AuditEvent(kind=AuditEvent.PURGED, count=count), using="default")
    assert len(inserts._texts) == 1  # one text for the plain rows of the model
    counts = AuditEvent.objects.order_by("count").values_list("count", flat=True)
    assert list(counts) == [3, 4, 5]
    assert [created for _, created, _ in saved] == [True] * 3  # as Model.save() sends it
    assert [adding for _, _, adding in saved] == [False] * 3


def test_a_row_for_another_database_is_saved_at_once() -> None:
    with inserts.batch(True) as batch:
        assert batch is not None
        batch.using = "elsewhere"  # the batch writes to another alias than this row's
        inserts.save(AuditEvent(kind=AuditEvent.CREATED), using="default")
        assert AuditEvent.objects.count() == 1
        batch.rows.clear()


def test_outside_a_batch_rows_are_saved_at_once() -> None:
    ran: list[bool] = []
    with inserts.batch(False) as batch:
        assert batch is None
        inserts.save(AuditEvent(kind=AuditEvent.CREATED), using="default")
        inserts.on_commit(lambda: ran.append(True))
        assert AuditEvent.objects.count() == 1
    assert ran == [True]


# What keeps the ORM (a project could see the difference)


def project_receiver(sender: Any, **kwargs: Any) -> None:
    pass


@pytest.mark.parametrize("signal", [pre_save, post_save])
@pytest.mark.parametrize("model", [get_user_model(), Guest, Session, AuditEvent])
def test_a_project_receiver_of_any_row_keeps_the_orm(signal: Any, model: Any) -> None:
    assert inserts._plain(model)
    with connected(signal, project_receiver, sender=model):
        assert not inserts._plain(model)
        if connection.vendor == "postgresql":
            assert not inserts.eligible(*written())
    assert inserts._plain(model)


def test_anonauths_own_receiver_does_not() -> None:
    assert post_save.has_listeners(get_user_model())  # end_guest_status_on_password
    assert inserts._plain(get_user_model())


@isolate_apps("tests.testapp")
def test_a_save_of_its_own_parents_or_an_undrawn_key_keep_the_orm() -> None:
    class Saving(models.Model):  # noqa: DJ008
        class Meta:
            app_label = "testapp"

        def save(self, *args: Any, **kwargs: Any) -> None:
            super().save(*args, **kwargs)

    class Parent(models.Model):  # noqa: DJ008
        class Meta:
            app_label = "testapp"

    class Child(Parent):  # noqa: DJ008
        class Meta:
            app_label = "testapp"

    class Named(AbstractBaseUser):
        name = models.CharField(max_length=10, primary_key=True)
        USERNAME_FIELD = "name"

        class Meta:
            app_label = "testapp"

    class Keyed(AbstractBaseUser):
        key = models.CharField(max_length=10, primary_key=True, default="k")
        USERNAME_FIELD = "key"

        class Meta:
            app_label = "testapp"

    assert [inserts._plain(model) for model in (Saving, Child, Parent)] == [False, False, True]
    if connection.vendor == "postgresql":
        assert not inserts.eligible(Named)  # a key that only the ORM's caller could set
        assert inserts.eligible(Keyed)  # a key by default: nothing to draw


# The statement and its refusal, whatever the database (PostgreSQL runs them for real in
# test_creation_commit.py)


class FakeCursor:
    """A cursor that records the statement and fails as told (a context manager)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.executed: list[tuple[str, list[Any]]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: list[Any]) -> None:
        self.executed.append((sql, params))
        if self.error is not None:
            raise self.error


def refused(sqlstate: str) -> DatabaseError:
    cause = Exception("refused")
    cause.sqlstate = sqlstate  # type: ignore[attr-defined]  # as psycopg's errors carry it
    error = DatabaseError("refused")
    error.__cause__ = cause
    return error


def flush_two(cursor: FakeCursor) -> inserts.Batch:
    batch = inserts.Batch("default")
    for kind in (AuditEvent.CREATED, AuditEvent.UPGRADED):
        batch.rows.append(AuditEvent(kind=kind))
    with mock.patch.object(connections["default"], "cursor", return_value=cursor):
        batch.flush()
    return batch


def test_several_rows_are_named_with_clauses_of_the_last_ones_insert() -> None:
    cursor = FakeCursor()
    flush_two(cursor)
    [(sql, params)] = cursor.executed
    assert sql.startswith("WITH anonauth_row0 AS (INSERT INTO ")
    assert sql.count("INSERT INTO") == 2
    assert [p for p in params if p in ("created", "upgraded")] == ["created", "upgraded"]


def test_a_key_the_database_generates_itself_stops_the_batch_for_its_table() -> None:
    try:
        with pytest.raises(inserts.NoSequence):
            flush_two(FakeCursor(refused(inserts.GENERATED_ALWAYS)))
        assert ("default", AuditEvent._meta.db_table) in inserts._no_sequence
    finally:
        inserts._no_sequence.clear()
    with pytest.raises(DatabaseError):  # any other refusal is the creation's error
        flush_two(FakeCursor(refused("23505")))
    assert not inserts._no_sequence


def test_key_draw_names_the_user_models_sequence() -> None:
    """The expression the live-guest cap's lock carries: the user key's sequence, found
    by its quoted table and its column (and on PostgreSQL, a new key each time)."""
    model = get_user_model()
    sql, params = inserts.key_draw(model, "default")
    assert sql == "nextval(pg_get_serial_sequence(%s, %s))"
    assert params == [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            drawn = []
            for _ in range(2):
                cursor.execute(f"SELECT {sql}", params)
                drawn.append(cursor.fetchone()[0])
        assert drawn[1] > drawn[0]
