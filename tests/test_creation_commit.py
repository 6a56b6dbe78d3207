"""A guest in one commit: the user, its ``Guest`` row, its session and its audit event are
written in one transaction, and the response does not write the session a second time
unless the view changed it (the "Scale" issue, item 1)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.cache import SessionStore as CacheStore
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models.signals import pre_save
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings

from anonauth import guests, sessions
from anonauth.models import AuditEvent, Guest
from anonauth.test import BROWSER_USER_AGENT, connected

pytestmark = pytest.mark.django_db(transaction=True)


def browser() -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
    client.cookies["seen"] = "1"
    return client


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The captured statements as ``VERB table`` (``SAVEPOINT``, ``COMMIT``... alone)."""
    shown = []
    for query in queries.captured_queries:
        words = query["sql"].replace('"', "").split()
        verb = words[0].upper()
        table = {"INSERT": 2, "SELECT": None, "UPDATE": 1, "DELETE": 2}.get(verb)
        if verb == "SELECT":
            table = words.index("FROM") + 1
        shown.append(verb if table is None else f"{verb} {words[table]}")
    return shown


def in_transaction(shown: list[str]) -> list[str]:
    """The statements from the first write to the COMMIT (SQLite logs its BEGIN too)."""
    return [s for s in shown if s != "BEGIN"]


def user_table() -> str:
    return str(get_user_model()._meta.db_table)


def creation(session_table: bool = True) -> list[str]:
    inserts = [user_table(), "anonauth_guest"] + (["django_session"] if session_table else [])
    return [f"INSERT {table}" for table in [*inserts, "anonauth_auditevent"]]


def anonymous_session() -> str:
    session = SessionStore()
    session.update({"cart": ["sku-1"]})
    session.create()
    return str(session.session_key)


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
    with session_writes() as save, CaptureQueriesContext(db_connection) as queries:
        response = client.get("/guest-lean/")
    assert save.call_count == 0  # the creation INSERTs the row itself, in its transaction
    assert [q for q in statements(queries) if "django_session" in q] == ["INSERT django_session"]
    key = response.cookies["sessionid"].value
    assert Guest.objects.get().session_key == key
    assert client.get("/auth/anonymous/session/").json()["user"]["is_guest"]  # the cookie works


def test_a_view_that_changes_the_session_still_gets_it_saved() -> None:
    client = browser()
    with session_writes() as save:
        client.get("/ensure-and-write/")
    assert save.call_count == 1  # the response's, after the creation's own INSERT
    assert SessionStore(client.cookies["sessionid"].value)["written_by_the_view"] is True


def test_a_failing_audit_insert_leaves_no_guest() -> None:
    def fail(sender: Any, **kwargs: Any) -> None:
        raise DatabaseError("the audit table is unavailable")

    with connected(pre_save, fail, sender=AuditEvent):
        response = browser().get("/guest-fn/")
    assert response.json()["refusal"] == "unavailable"
    assert not Guest.objects.exists()


# The statements, exactly


def test_a_fresh_visitor_costs_four_inserts_and_one_commit() -> None:
    with CaptureQueriesContext(db_connection) as queries:
        assert browser().get("/guest-lean/").status_code == 200
    assert in_transaction(statements(queries)) == [*creation(), "COMMIT"]


def test_a_visitor_with_an_anonymous_session_only_adds_its_load() -> None:
    client = browser()
    client.cookies["sessionid"] = anonymous_session()
    with CaptureQueriesContext(db_connection) as queries:
        assert client.get("/guest-lean/").status_code == 200
    shown = statements(queries)
    assert shown[0] == "SELECT django_session"  # loaded before the transaction begins
    assert in_transaction(shown[1:]) == [*creation(), "COMMIT"]
    assert SessionStore(client.cookies["sessionid"].value)["cart"] == ["sku-1"]


def test_inside_an_open_transaction_the_creation_is_one_savepoint() -> None:
    with CaptureQueriesContext(db_connection) as queries, transaction.atomic():
        assert browser().get("/guest-lean/").status_code == 200
    shown = [s for s in statements(queries) if s not in ("BEGIN", "COMMIT")]
    assert shown == ["SAVEPOINT", *creation(), "RELEASE"]
    assert Guest.objects.count() == 1


@pytest.mark.parametrize(
    ("engine", "session_row"),
    [
        ("django.contrib.sessions.backends.db", True),
        ("django.contrib.sessions.backends.cached_db", True),
        ("django.contrib.sessions.backends.cache", False),
        ("django.contrib.sessions.backends.file", False),
        ("django.contrib.sessions.backends.signed_cookies", False),
    ],
)
def test_every_session_engine_signs_the_guest_in(
    engine: str, session_row: bool, tmp_path: Any
) -> None:
    with override_settings(SESSION_ENGINE=engine, SESSION_FILE_PATH=str(tmp_path)):
        client = browser()
        with CaptureQueriesContext(db_connection) as queries:
            created = client.get("/guest-lean/")
        assert in_transaction(statements(queries)) == [*creation(session_row), "COMMIT"]
        guest = Guest.objects.get()
        assert created.content == str(guest.user_id).encode()
        with CaptureQueriesContext(db_connection) as queries:
            again = client.get("/auth/anonymous/session/").json()["user"]
        assert again == {**again, "id": guest.user_id, "is_guest": True}
        if engine.endswith("cached_db"):  # cached after the commit: read from the cache
            assert not [s for s in statements(queries) if s == "SELECT django_session"]
    assert Session.objects.count() == int(session_row)


def test_cached_db_caches_nothing_of_a_rolled_back_creation() -> None:
    engine = "django.contrib.sessions.backends.cached_db"
    with override_settings(SESSION_ENGINE=engine), fail_on(AuditEvent):
        assert browser().get("/guest-fn/").json()["refusal"] == "unavailable"
        assert not Session.objects.exists()
        assert not [k for k in cache._cache if "cached_db" in k]  # type: ignore[attr-defined]


# Each failure point leaves nothing half-created


def fail_on(model: Any) -> Any:
    def fail(sender: Any, **kwargs: Any) -> None:
        raise DatabaseError(f"{model.__name__} cannot be written")

    return connected(pre_save, fail, sender=model)


def nothing_left(anonymous: int = 0) -> None:
    assert not get_user_model().objects.exists()
    assert not Guest.objects.exists()
    assert not AuditEvent.objects.exists()
    assert Session.objects.count() == anonymous


@pytest.mark.parametrize("failing", ["user", "guest", "session", "audit"])
def test_a_failing_insert_leaves_nothing(failing: str) -> None:
    model = {
        "user": get_user_model(),
        "guest": Guest,
        "session": Session,
        "audit": AuditEvent,
    }[failing]
    client = browser()
    client.cookies["sessionid"] = anonymous_session()
    with fail_on(model):
        assert client.get("/guest-fn/").json()["refusal"] == "unavailable"
    nothing_left(anonymous=1)
    assert client.get("/guest-fn/").json()["is_guest"]  # the next request gets its guest


def test_a_failing_commit_leaves_nothing() -> None:
    error = DatabaseError("the commit failed")
    with mock.patch.object(db_connection, "commit", side_effect=error):
        assert browser().get("/guest-fn/").json()["refusal"] == "unavailable"
    nothing_left()


def test_a_failing_insert_inside_an_open_transaction_leaves_it_usable() -> None:
    with transaction.atomic(), fail_on(Session):
        assert browser().get("/guest-fn/").json()["refusal"] == "unavailable"
        assert not Guest.objects.exists()  # the savepoint rolled back; the outer goes on
        AuditEvent.objects.create(kind=AuditEvent.UPGRADED)
    assert list(AuditEvent.objects.values_list("kind", flat=True)) == [AuditEvent.UPGRADED]


# Claims and retries without savepoints


def creating_request() -> Any:
    request = RequestFactory(HTTP_USER_AGENT=BROWSER_USER_AGENT).get("/", REMOTE_ADDR="10.1.2.3")
    request.COOKIES["csrftoken"] = "c" * 32
    SessionMiddleware(lambda request: HttpResponse()).process_request(request)
    request.user = AnonymousUser()
    return request


@pytest.mark.parametrize("outer_transaction", [False, True])
def test_a_lost_claim_returns_the_winner(outer_transaction: bool) -> None:
    winner = guests.create_guest()
    key = guests._creation_key(creating_request())
    Guest.objects.filter(user_id=winner.pk).update(creation_key=key)
    request = creating_request()
    with CaptureQueriesContext(db_connection) as queries:
        if outer_transaction:
            with transaction.atomic():
                user, created = guests.sign_in_new_guest(request)
        else:
            user, created = guests.sign_in_new_guest(request)
    assert (user.pk, created) == (winner.pk, False)
    assert request.user.pk == winner.pk
    assert get_user_model().objects.count() == 1
    assert SessionStore(request.session.session_key)["_auth_user_id"] == str(winner.pk)
    shown = statements(queries)
    assert ("SAVEPOINT" in shown) is outer_transaction  # outermost: ROLLBACK, no savepoint
    assert "SELECT anonauth_guest" in shown  # the winner, looked up after the rollback


def test_a_taken_session_key_is_retried_with_another() -> None:
    taken = anonymous_session()
    keys = [taken, "k" * 32]
    with mock.patch.object(sessions, "choose_guest_session_key", side_effect=keys):
        response = browser().get("/guest-lean/")
    guest = Guest.objects.get()
    assert response.cookies["sessionid"].value == guest.session_key == "k" * 32
    assert get_user_model().objects.count() == 1
    assert SessionStore(taken).load() == {"cart": ["sku-1"]}  # the other session untouched


def test_an_integrity_error_on_the_last_attempt_is_raised() -> None:
    taken = anonymous_session()
    with (
        mock.patch.object(sessions, "choose_guest_session_key", return_value=taken),
        pytest.raises(IntegrityError),
    ):
        guests.sign_in_new_guest(creating_request())
    assert not Guest.objects.exists()


def test_a_taken_cache_session_key_gives_the_session_another() -> None:
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache"):
        taken = CacheStore()
        taken.create()
        with mock.patch.object(
            sessions, "choose_guest_session_key", return_value=taken.session_key
        ):
            response = browser().get("/guest-lean/")
        guest = Guest.objects.get()
        assert response.cookies["sessionid"].value == guest.session_key != taken.session_key
