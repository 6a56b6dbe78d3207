"""A guest in one commit: the user, its ``Guest`` row, its session and its audit event are
written in one transaction, and the response does not write the session a second time
unless the view changed it (the "Scale" issue, item 1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
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
from django.db.models.signals import post_save, pre_save
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings
from rest_framework.authtoken.models import Token

from anonauth import guests, inserts, sessions
from anonauth.models import AuditEvent, Guest
from anonauth.test import BROWSER_USER_AGENT, connected

pytestmark = pytest.mark.django_db(transaction=True)


def browser() -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
    client.cookies["seen"] = "1"
    return client


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The captured statements as ``VERB table`` (``SAVEPOINT``, ``COMMIT``... alone); a
    batch (one statement of several INSERTs) as ``INSERT table + table...``, and the draw
    of the user's key as ``SELECT nextval``."""
    shown = []
    for query in queries.captured_queries:
        words = query["sql"].replace('"', "").split()
        verb = words[0].upper()
        if verb == "WITH":
            tables = re.findall(r'INSERT INTO "?(\w+)"?', query["sql"])
            shown.append("INSERT " + " + ".join(tables))
            continue
        if verb == "SELECT" and words[1].startswith("nextval("):
            shown.append("SELECT nextval")
            continue
        if verb == "SELECT" and words[1].startswith("pg_advisory_xact_lock("):
            shown.append("SELECT lock" + (" + nextval" if "nextval(" in query["sql"] else ""))
            continue
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


def batched() -> bool:
    """Whether this database writes a creation's rows as one statement (PostgreSQL, no
    receiver that would see the difference: anonauth.inserts)."""
    return guests._batched(True)


def rows(session_table: bool = True) -> list[str]:
    """A creation's writes: the key's draw and one statement, or one INSERT per row."""
    tables = [user_table(), "anonauth_guest"] + (["django_session"] if session_table else [])
    tables.append("anonauth_auditevent")
    if batched():
        return ["SELECT nextval", "INSERT " + " + ".join(tables)]
    return [f"INSERT {table}" for table in tables]


def creation(session_table: bool = True) -> list[str]:
    """A creation with no transaction open: batched, its one statement commits alone;
    else the INSERTs and one COMMIT."""
    return rows(session_table) + ([] if batched() else ["COMMIT"])


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
    shown = statements(queries)
    writes = [s for s in shown if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    tables = [user_table(), "anonauth_guest", "django_session", "anonauth_auditevent"]
    if batched():  # one statement, committed alone: no BEGIN, no COMMIT
        assert writes == ["INSERT " + " + ".join(tables)]
        assert "COMMIT" not in shown
    else:
        assert writes == [f"INSERT {table}" for table in tables]
        if connection.vendor == "postgresql":  # autocommit off only around the one atomic
            assert shown.count("COMMIT") == 1
    assert AuditEvent.objects.filter(kind=AuditEvent.CREATED).count() == 1


def test_the_response_does_not_write_the_session_again() -> None:
    client = browser()
    with session_writes() as save, CaptureQueriesContext(db_connection) as queries:
        response = client.get("/guest-lean/")
    assert save.call_count == 0  # the creation INSERTs the row itself, in its transaction
    session_writes_shown = [q for q in statements(queries) if "django_session" in q]
    assert len(session_writes_shown) == 1
    assert session_writes_shown[0].startswith("INSERT")
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


def test_a_fresh_visitor_costs_its_rows_and_one_commit() -> None:
    with CaptureQueriesContext(db_connection) as queries:
        assert browser().get("/guest-lean/").status_code == 200
    assert in_transaction(statements(queries)) == creation()


def test_a_visitor_with_an_anonymous_session_only_adds_its_load() -> None:
    client = browser()
    client.cookies["sessionid"] = anonymous_session()
    with CaptureQueriesContext(db_connection) as queries:
        assert client.get("/guest-lean/").status_code == 200
    shown = statements(queries)
    assert shown[0] == "SELECT django_session"  # loaded before the transaction begins
    assert in_transaction(shown[1:]) == creation()
    assert SessionStore(client.cookies["sessionid"].value)["cart"] == ["sku-1"]


def test_inside_an_open_transaction_the_creation_is_one_savepoint() -> None:
    with CaptureQueriesContext(db_connection) as queries, transaction.atomic():
        assert browser().get("/guest-lean/").status_code == 200
    shown = [s for s in statements(queries) if s not in ("BEGIN", "COMMIT")]
    assert shown == ["SAVEPOINT", *rows(), "RELEASE"]
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
        assert in_transaction(statements(queries)) == creation(session_row)
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


def project_receiver(sender: Any, **kwargs: Any) -> None:
    pass


@pytest.mark.parametrize("path", ["capped", "orm"])
def test_a_failing_commit_leaves_nothing(path: str) -> None:
    error = DatabaseError("the commit failed")
    # Batched with no transaction open, the statement is the commit (the refused batches
    # below); the live-guest cap's lock gives the batch a transaction; a project
    # receiver of the user model keeps the ORM's INSERTs and COMMIT (PostgreSQL too).
    if path == "capped":
        setting = override_settings(ANONAUTH_LIVE_GUEST_CAP=5)
    else:
        setting = connected(post_save, project_receiver, sender=get_user_model())
    with setting, mock.patch.object(db_connection, "commit", side_effect=error):
        assert browser().get("/guest-fn/", REMOTE_ADDR="10.9.8.7").json()["refusal"] == (
            "unavailable"
        )
    nothing_left()


# The batch's failure points (PostgreSQL): the key's draw, and the one statement when
# any of its rows fails (a trigger of the database refuses it)

needs_batch = pytest.mark.skipif(
    db_connection.vendor != "postgresql", reason="rows are batched on PostgreSQL only"
)


@needs_batch
@override_settings(ANONAUTH_LIVE_GUEST_CAP=5)
def test_the_caps_lock_draws_the_key_in_the_same_statement() -> None:
    """Under the live-guest cap: the lock and the key's draw in one statement, the count,
    the rows: 5 statements with BEGIN and COMMIT (6 before)."""
    with CaptureQueriesContext(db_connection) as queries:
        response = browser().get("/guest-fn/", REMOTE_ADDR="10.9.8.7")
    assert response.json()["refusal"] is None
    begin, lock, count, rows, commit = (query["sql"] for query in queries.captured_queries)
    assert (begin, commit) == ("BEGIN", "COMMIT")  # the lock's transaction
    assert "pg_advisory_xact_lock(" in lock
    assert "nextval(" in lock
    assert "COUNT(" in count.upper()
    assert "anonauth_guest" in count
    assert rows.startswith("WITH")
    assert "nextval(" not in rows
    guest = Guest.objects.get()
    assert guest.user_id == get_user_model().objects.get().pk
    assert guest.network_key


@needs_batch
def test_a_refusal_by_the_cap_writes_nothing(settings: Any) -> None:
    settings.ANONAUTH_LIVE_GUEST_CAP = 1
    assert browser().get("/guest-fn/", REMOTE_ADDR="10.9.8.7").json()["refusal"] is None
    assert browser().get("/guest-fn/", REMOTE_ADDR="10.9.8.8").json()["refusal"] == (
        "live_guest_cap"
    )
    assert get_user_model().objects.count() == 1
    assert Guest.objects.count() == 1


@contextmanager
def refused_by_the_database(table: str) -> Iterator[None]:
    """A ``BEFORE INSERT`` trigger on ``table`` that raises: the database refuses the row."""
    with db_connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION anonauth_refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        cursor.execute(
            f'CREATE TRIGGER anonauth_refuse BEFORE INSERT ON "{table}"'
            " FOR EACH ROW EXECUTE FUNCTION anonauth_refuse()"
        )
    try:
        yield
    finally:
        with db_connection.cursor() as cursor:
            cursor.execute(f'DROP TRIGGER anonauth_refuse ON "{table}"')


@needs_batch
@pytest.mark.parametrize("outer_transaction", [False, True])
@pytest.mark.parametrize("failing", ["user", "guest", "session", "audit"])
def test_a_batch_refused_by_the_database_leaves_nothing(
    failing: str, outer_transaction: bool
) -> None:
    assert batched()
    table = {
        "user": user_table(),
        "guest": "anonauth_guest",
        "session": "django_session",
        "audit": "anonauth_auditevent",
    }[failing]
    client = browser()
    client.cookies["sessionid"] = anonymous_session()
    with refused_by_the_database(table):
        if outer_transaction:
            with transaction.atomic():
                assert client.get("/guest-fn/").json()["refusal"] == "unavailable"
                assert not Guest.objects.exists()  # the savepoint rolled back; the outer goes on
        else:
            assert client.get("/guest-fn/").json()["refusal"] == "unavailable"
    nothing_left(anonymous=1)
    assert client.get("/guest-fn/").json()["is_guest"]  # the next request gets its guest


@needs_batch
def test_a_failing_draw_of_the_key_leaves_nothing() -> None:
    error = DatabaseError("the sequence is unavailable")
    with mock.patch.object(inserts.Batch, "draw_pk", side_effect=error):
        assert browser().get("/guest-fn/").json()["refusal"] == "unavailable"
    nothing_left()


@needs_batch
@override_settings(ANONAUTH_LIVE_GUEST_CAP=5)
def test_a_failing_lock_and_draw_under_the_cap_leaves_nothing() -> None:
    # The lock's statement fails with the draw it carries (no such sequence).
    no_sequence = ("nextval('anonauth_no_such_sequence')", [])
    with mock.patch.object(inserts, "key_draw", return_value=no_sequence):
        assert browser().get("/guest-fn/", REMOTE_ADDR="10.9.8.7").json()["refusal"] == (
            "unavailable"
        )
    nothing_left()


@needs_batch
def test_a_user_key_without_a_sequence_falls_back_to_the_orm() -> None:
    real = inserts.Batch.draw_pk

    def no_sequence(batch: inserts.Batch, model: Any) -> Any:
        return real(batch, Session)  # its key has no sequence: nextval(NULL) is NULL

    try:
        with (
            mock.patch.object(inserts.Batch, "draw_pk", no_sequence),
            CaptureQueriesContext(db_connection) as queries,
        ):
            response = browser().get("/guest-lean/")
        assert not inserts.eligible(Session)  # remembered: no draw is tried again
    finally:
        inserts._no_sequence.clear()
    assert response.status_code == 200
    tables = [user_table(), "anonauth_guest", "django_session", "anonauth_auditevent"]
    inserts_shown = [s for s in statements(queries) if s.startswith("INSERT")]
    assert inserts_shown == [f"INSERT {table}" for table in tables]  # the ORM, one by one
    assert Guest.objects.get().session_key == response.cookies["sessionid"].value


@needs_batch
@pytest.mark.parametrize("cap", [None, 5])
def test_a_user_key_generated_always_falls_back_to_the_orm(cap: int | None, settings: Any) -> None:
    settings.ANONAUTH_LIVE_GUEST_CAP = cap  # with the cap, the lock's statement draws the key
    table, column = user_table(), get_user_model()._meta.pk.column

    def generated(kind: str) -> None:
        with db_connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET GENERATED {kind}')

    generated("ALWAYS")  # the column takes no value but its own
    try:
        with CaptureQueriesContext(db_connection) as queries:
            response = browser().get("/guest-lean/")
        assert not guests._batched(True)  # remembered: the ORM from now on
    finally:
        generated("BY DEFAULT")
        inserts._no_sequence.clear()
    assert response.status_code == 200
    tables = [user_table(), "anonauth_guest", "django_session", "anonauth_auditevent"]
    inserts_shown = [s for s in statements(queries) if s.startswith("INSERT")]
    assert inserts_shown == [  # the refused batch, then the ORM, one by one
        "INSERT " + " + ".join(tables),
        *(f"INSERT {table}" for table in tables),
    ]
    if cap is not None:  # each attempt its own lock: the batch's draws the key, the ORM's not
        locks = [s for s in statements(queries) if s.startswith("SELECT lock")]
        assert locks == ["SELECT lock + nextval", "SELECT lock"]
    assert Guest.objects.get().session_key == response.cookies["sessionid"].value
    assert get_user_model().objects.count() == 1


@needs_batch
def test_a_project_receiver_of_the_user_model_gets_the_orm_path() -> None:
    seen: list[tuple[bool, bool]] = []

    def receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        seen.append((created, transaction.get_connection().in_atomic_block))

    assert batched()
    with connected(post_save, receiver, sender=get_user_model()):
        assert not batched()
        with CaptureQueriesContext(db_connection) as queries:
            assert browser().get("/guest-lean/").status_code == 200
    assert seen == [(True, True)]  # in the creation's transaction, as Model.save() sends it
    assert in_transaction(statements(queries)) == [
        *(f"INSERT {t}" for t in [user_table(), "anonauth_guest"]),
        "INSERT django_session",
        "INSERT anonauth_auditevent",
        "COMMIT",
    ]
    assert batched()  # disconnected: batched again


@needs_batch
def test_a_batched_user_is_left_as_a_saved_one() -> None:
    user = guests.sign_in_new_guest(creating_request())[0]
    assert not user._state.adding
    assert user._state.db == "default"
    stored = get_user_model().objects.get(pk=user.pk)
    assert (stored.get_username(), stored.has_usable_password()) == (user.get_username(), False)
    guest = Guest.objects.get(user_id=user.pk)
    assert guest.session_key == user.anonauth_guest.session_key  # type: ignore[attr-defined]
    assert (guest.metadata, guest.creation_key is not None) == ({}, True)


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


def test_drf_docs_token_receiver_gets_its_token_for_a_new_guest() -> None:
    """DRF's documented ``post_save`` receiver that gives every new user a ``Token``: it
    runs in the creation's transaction (the ORM path), and its row commits with the
    guest's."""

    def create_auth_token(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        if created:
            Token.objects.create(user=instance)

    with connected(post_save, create_auth_token, sender=get_user_model()):
        response = browser().get("/guest-fn/")
        with mock.patch.object(Token.objects, "create", side_effect=DatabaseError("no token")):
            refused = browser().get("/guest-fn/")
    guest = Guest.objects.get()
    assert response.json()["is_guest"]
    assert Token.objects.get().user_id == guest.user_id
    assert refused.json()["refusal"] == "unavailable"  # the receiver failed: no guest
    assert get_user_model().objects.count() == 1
