"""A guest in one commit: the user, its ``Guest`` row, its session and its audit event are
written in one transaction, and the response does not write the session a second time
unless the view changed it (the "Scale" issue, item 1)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError
from django.db.models.signals import pre_save
from django.test import Client
from django.test.utils import CaptureQueriesContext

from anonauth.models import AuditEvent, Guest
from anonauth.test import BROWSER_USER_AGENT, connected

pytestmark = pytest.mark.django_db(transaction=True)


def browser() -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
    client.cookies["seen"] = "1"
    return client


def session_writes() -> Any:
    return mock.patch.object(SessionStore, "save", autospec=True, side_effect=SessionStore.save)


def test_the_guest_is_written_in_one_commit() -> None:
    from django.db import connection

    with CaptureQueriesContext(connection) as queries:
        response = browser().get("/guest-lean/")
    assert response.status_code == 200
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    writes = [s for s in statements if s in ("INSERT", "UPDATE", "DELETE")]
    assert writes == ["INSERT"] * 4  # user, Guest, session, audit event
    if connection.vendor == "postgresql":  # autocommit off only around the one atomic
        assert statements.count("COMMIT") <= 1
    assert AuditEvent.objects.filter(kind=AuditEvent.CREATED).count() == 1


def test_the_response_does_not_write_the_session_again() -> None:
    client = browser()
    with session_writes() as save:
        response = client.get("/guest-lean/")
    assert save.call_count == 1  # the insert, inside the creation's transaction
    key = response.cookies["sessionid"].value
    assert Guest.objects.get().session_key == key
    assert client.get("/auth/anonymous/session/").json()["user"]["is_guest"]  # the cookie works


def test_a_view_that_changes_the_session_still_gets_it_saved() -> None:
    client = browser()
    with session_writes() as save:
        client.get("/ensure-and-write/")
    assert save.call_count == 2
    assert SessionStore(client.cookies["sessionid"].value)["written_by_the_view"] is True


def test_a_failing_audit_insert_leaves_no_guest() -> None:
    def fail(sender: Any, **kwargs: Any) -> None:
        raise DatabaseError("the audit table is unavailable")

    with connected(pre_save, fail, sender=AuditEvent):
        response = browser().get("/guest-fn/")
    assert response.json()["refusal"] == "unavailable"
    assert not Guest.objects.exists()
