"""anonauth.inserts: a creation's rows in one statement on PostgreSQL, and where it must
not be used (what a project could see). The creation's own statements and failure
points are in test_creation_commit.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import connection, models
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
