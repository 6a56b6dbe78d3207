"""Fault injection: a real fault in the middle of each guest operation, and the end state.

Every test breaks something for real (the rate-limit cache unreachable, a database
statement that fails inside the transaction, a worker killed holding its locks) and
checks three things: no 500 (errors are JSON with a ``code``, the lazy path leaves the
visitor anonymous with a refusal), no half-written row, no lost row. Rows are counted
for users, ``Guest``, sessions and the test apps' data (``Note``, ``Basket``,
``BasketItem``).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import pre_delete, pre_save
from django.test import Client, override_settings
from django.utils import timezone

from anonauth import link
from anonauth.deletion import Plan
from anonauth.link import link_guest
from anonauth.models import Guest
from anonauth.signals import guest_linking
from anonauth.test import BROWSER_USER_AGENT, connected, guest_client, make_registered_user
from tests.linkapp.models import Note
from tests.pathsapp.killed_link import link_and_hang
from tests.test_abuse import DOWN_CACHE
from tests.testapp.models import Basket, BasketItem

SIGN_IN = "/auth/anonymous/sign-in/"
SESSION = "/auth/anonymous/session/"
UPGRADE = "/auth/anonymous/upgrade/"
LINK = "/auth/anonymous/link/"
PASSWORD = "correct-horse-42"
NEW_PASSWORD = "a-long-new-passphrase-17"
cache_down = override_settings(CACHES=DOWN_CACHE, RATELIMIT_USE_CACHE="down")


# Helpers


def counts() -> dict[str, int]:
    """The rows a fault could half-write or lose."""
    return {
        "users": get_user_model()._default_manager.count(),
        "guests": Guest.objects.count(),
        "sessions": Session.objects.count(),
        "notes": Note.objects.count(),
        "baskets": Basket.objects.count(),
        "items": BasketItem.objects.count(),
    }


def browser() -> Client:
    """A browser that is turned away only by the fault: a real agent, a cookie."""
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, raise_request_exception=False)
    client.cookies["seen"] = "1"
    return client


def app_client() -> Client:
    """An app client: no cookies, no ``Origin`` (sign-in/ needs no CSRF token)."""
    return Client(HTTP_USER_AGENT="okhttp/4.12", raise_request_exception=False)


def signed_in_guest() -> tuple[Client, Any]:
    """A browser signed in as a new guest, and that guest."""
    client = guest_client(Client(raise_request_exception=False))
    guest = get_user_model()._default_manager.get(pk=client.session[SESSION_KEY])
    return client, guest


def give_data(user: Any, *, notes: int = 3, items: int = 2) -> None:
    """Notes and a basket with items, owned by ``user``."""
    Note.objects.bulk_create(Note(author=user, text=f"note {n}") for n in range(notes))
    basket = Basket.objects.create(owner=user)
    BasketItem.objects.bulk_create(
        BasketItem(basket=basket, name=f"item {n}") for n in range(items)
    )


def owned(user: Any) -> dict[str, int]:
    return {
        "notes": Note.objects.filter(author=user).count(),
        "baskets": Basket.objects.filter(owner=user).count(),
        "items": BasketItem.objects.filter(basket__owner=user).count(),
    }


def post_json(client: Client, url: str, data: dict[str, Any]) -> Any:
    token = client.cookies["csrftoken"].value
    return client.post(url, data, content_type="application/json", HTTP_X_CSRFTOKEN=token)


def json_error(response: Any, status: int, code: str) -> None:
    """The API's error shape, never a 500 page."""
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    assert (response.status_code, response.json()["code"]) == (status, code), response.content


def still_the_guest(client: Client, guest: Any) -> None:
    """``guest`` is a guest still, and ``client`` is still signed in as it."""
    assert Guest.objects.filter(user_id=guest.pk).exists()
    guest.refresh_from_db()
    assert not guest.has_usable_password()
    response = client.get(SESSION)
    assert response.status_code == 200, response.content
    assert response.json()["user"]["id"] == guest.pk
    assert response.json()["user"]["is_guest"] is True


def fail_sql(**kwargs: Any) -> None:
    """A real database error, raised by the database inside the current transaction
    (on PostgreSQL it also aborts the transaction, as a real failure would)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM anonauth_no_such_table")


# 1. The rate-limit cache is unreachable


class TestCacheUnreachable:
    """With the rate-limit cache down nobody is admitted, and nothing is written."""

    def test_the_lazy_path_stays_anonymous(self, db: None) -> None:
        before = counts()
        with cache_down:
            response = browser().get("/guest-fn/")
        assert response.status_code == 200, response.content
        assert response.json() == {"id": None, "is_guest": False, "refusal": "unavailable"}
        assert counts() == before

    def test_sign_in_answers_503_json(self, db: None) -> None:
        before = counts()
        with cache_down:
            response = app_client().post(SIGN_IN)
        json_error(response, 503, "unavailable")
        assert counts() == before

    def test_upgrade_answers_503_json_and_the_guest_stays(self, db: None) -> None:
        client, guest = signed_in_guest()
        give_data(guest)
        before, mine = counts(), owned(guest)
        with cache_down:
            response = post_json(
                client, UPGRADE, {"email": "new@example.com", "password": NEW_PASSWORD}
            )
        json_error(response, 503, "unavailable")
        assert counts() == before
        assert owned(guest) == mine
        still_the_guest(client, guest)

    def test_link_answers_503_json_and_nothing_moves(self, db: None) -> None:
        member = make_registered_user()
        client, guest = signed_in_guest()
        give_data(guest)
        before, mine = counts(), owned(guest)
        with cache_down:
            response = post_json(client, LINK, {"login": member.email, "password": PASSWORD})
        json_error(response, 503, "unavailable")
        assert counts() == before
        assert owned(guest) == mine
        assert owned(member) == {"notes": 0, "baskets": 0, "items": 0}
        still_the_guest(client, guest)


# 2. A database error in the middle of an operation


@contextmanager
def failing_insert(model: type[Any]) -> Iterator[None]:
    """Every save of ``model`` fails in the database (for ``Guest``: after the user row
    was inserted; for ``Session``: after the user and the ``Guest`` rows were)."""
    with connected(pre_save, fail_sql, sender=model):
        yield


@pytest.mark.django_db(transaction=True)
class TestCreateInterrupted:
    """Creating a guest fails after some of its rows were written: none stays."""

    @pytest.mark.parametrize("model", [Guest, Session], ids=["guest-insert", "session-insert"])
    def test_the_lazy_path_stays_anonymous(self, model: type[Any]) -> None:
        client = browser()
        before = counts()
        with failing_insert(model):
            response = client.get("/guest-fn/")
        assert response.status_code == 200, response.content
        assert response.json() == {"id": None, "is_guest": False, "refusal": "unavailable"}
        assert counts() == before
        # Nothing is stuck: the next visit creates the guest.
        retried = client.get("/guest-fn/").json()
        assert retried["is_guest"] is True
        assert Guest.objects.filter(user_id=retried["id"]).exists()

    @pytest.mark.parametrize("model", [Guest, Session], ids=["guest-insert", "session-insert"])
    def test_sign_in_answers_503_json(self, model: type[Any]) -> None:
        client = app_client()
        before = counts()
        with failing_insert(model):
            response = client.post(SIGN_IN)
        json_error(response, 503, "unavailable")
        assert counts() == before
        assert client.post(SIGN_IN).status_code == 201


def failing_user_update(sender: Any, instance: Any, **kwargs: Any) -> None:
    """The upgrade's user UPDATE fails (the ``Guest`` row was deleted just before)."""
    if kwargs.get("update_fields") and "password" in kwargs["update_fields"]:
        raise DatabaseError("injected: the user UPDATE failed")


@pytest.mark.django_db(transaction=True)
class TestUpgradeInterrupted:
    @pytest.mark.parametrize("fault", ["raise", "sql"])
    def test_the_guest_stays_a_guest_with_its_data(self, fault: str) -> None:
        client, guest = signed_in_guest()
        give_data(guest)
        before, mine = counts(), owned(guest)
        receiver = failing_user_update if fault == "raise" else fail_sql
        with connected(pre_save, receiver, sender=get_user_model()):
            response = post_json(
                client, UPGRADE, {"email": "new@example.com", "password": NEW_PASSWORD}
            )
        json_error(response, 503, "unavailable")
        assert counts() == before
        assert owned(guest) == mine
        guest.refresh_from_db()
        assert guest.email != "new@example.com"
        still_the_guest(client, guest)
        # The same guest can upgrade once the database is back.
        retried = post_json(client, UPGRADE, {"email": "new@example.com", "password": NEW_PASSWORD})
        assert retried.status_code == 200, retried.content
        upgraded = retried.json()["user"]
        assert (upgraded["id"], upgraded["email"], upgraded["is_guest"]) == (
            guest.pk,
            "new@example.com",
            False,
        )
        assert owned(guest) == mine


def moves_notes_then_fails(guest: Any, user: Any, **kwargs: Any) -> None:
    """A ``guest_linking`` receiver that migrates some rows itself, then hits an error."""
    Note.objects.filter(pk__in=Note.objects.filter(author=guest).values("pk")[:2]).update(
        author=user
    )
    raise DatabaseError("injected: the receiver's second statement failed")


@contextmanager
def receiver_fails() -> Iterator[None]:
    with connected(guest_linking, moves_notes_then_fails):
        yield


@contextmanager
def reassignment_fails() -> Iterator[None]:
    """The reassignment fails in the database midway: the baskets and the notes were
    moved (in the transaction), the next relation's statement fails."""
    real_move, midway = link.move, []

    def move(relation: Any, guest: Any, user: Any, result: Any) -> None:
        if midway:
            midway.append(owned(user))  # what the transaction had written so far
            fail_sql()
        real_move(relation, guest, user, result)
        if relation.label == "linkapp.Note.author":
            midway.append(relation.label)

    with mock.patch.object(link, "move", move):
        yield
    assert midway == ["linkapp.Note.author", {"notes": 3, "baskets": 1, "items": 2}]


@contextmanager
def guest_delete_fails() -> Iterator[None]:
    """Every relation was moved; deleting the guest fails in the database."""
    with connected(pre_delete, fail_sql, sender=get_user_model()):
        yield


@pytest.mark.django_db(transaction=True)
class TestLinkInterrupted:
    @pytest.mark.parametrize(
        "fault",
        [receiver_fails, reassignment_fails, guest_delete_fails],
        ids=["receiver", "reassignment", "guest-delete"],
    )
    def test_every_row_stays_the_guests(self, fault: Callable[[], Any]) -> None:
        member = make_registered_user()
        client, guest = signed_in_guest()
        give_data(guest)
        before, mine = counts(), owned(guest)
        with fault():
            response = post_json(client, LINK, {"login": member.email, "password": PASSWORD})
        json_error(response, 409, "link_failed")  # rolled back, the guest kept
        assert counts() == before
        assert owned(guest) == mine
        assert owned(member) == {"notes": 0, "baskets": 0, "items": 0}
        still_the_guest(client, guest)
        # The link goes through once the fault is gone.
        retried = post_json(client, LINK, {"login": member.email, "password": PASSWORD})
        assert retried.status_code == 200, retried.content
        assert owned(member) == mine
        assert not get_user_model()._default_manager.filter(pk=guest.pk).exists()


# Purge: the second batch fails


def stale_guests(count: int) -> list[Any]:
    """``count`` signed-in guests (each with a session row) with data, not seen for 60 days."""
    made = []
    for _ in range(count):
        _client, guest = signed_in_guest()
        give_data(guest, notes=2, items=1)
        made.append(guest)
    Guest.objects.update(last_seen=timezone.now() - timedelta(days=60))
    return made


@contextmanager
def second_batch_fails() -> Iterator[list[int]]:
    """``Plan.delete`` deletes the second batch's rows, then the database fails."""
    real_delete, calls = Plan.delete, []

    def delete(plan: Plan, ids: Any) -> Any:
        calls.append(len(ids))
        deletion = real_delete(plan, ids)
        if len(calls) == 2:
            fail_sql()
        return deletion

    with mock.patch.object(Plan, "delete", autospec=True, side_effect=delete):
        yield calls


def session_exists(guest_pk: Any) -> bool:
    key = Guest.objects.filter(user_id=guest_pk).values_list("session_key", flat=True).first()
    return bool(key) and Session.objects.filter(session_key=key).exists()


@pytest.mark.django_db(transaction=True)
class TestPurgeInterrupted:
    def purge(self) -> None:
        call_command("purge_anonymous", "--batch-size", "2", "--older-than", "30d", verbosity=0)

    def test_the_first_batch_stays_purged_the_failed_one_intact(self) -> None:
        member = make_registered_user()
        give_data(member)
        first, second = stale_guests(2), stale_guests(2)
        assert all(session_exists(guest.pk) for guest in second)
        with second_batch_fails() as calls, pytest.raises(CommandError, match="after 2 guests"):
            self.purge()
        assert calls == [2, 2]
        users = get_user_model()._default_manager
        assert not users.filter(pk__in=[guest.pk for guest in first]).exists()
        for guest in first:
            assert owned(guest) == {"notes": 0, "baskets": 0, "items": 0}
        for guest in second:  # rolled back, every row
            assert Guest.objects.filter(user_id=guest.pk).exists()
            assert owned(guest) == {"notes": 2, "baskets": 1, "items": 1}
            assert session_exists(guest.pk)
        assert owned(member) == {"notes": 3, "baskets": 1, "items": 2}
        assert counts() == {
            "users": 3,
            "guests": 2,
            "sessions": 2,
            "notes": 3 + 2 * 2,
            "baskets": 3,
            "items": 2 + 2,
        }
        # A later run purges the rest.
        self.purge()
        assert not Guest.objects.exists()
        assert users.count() == 1

    def test_the_command_reports_the_failure(self) -> None:
        stale_guests(4)
        with second_batch_fails(), pytest.raises(CommandError, match=r"(?i)database"):
            self.purge()


# 3. A worker killed in the middle of a link (PostgreSQL)

WAIT = 30.0  # the child starts an interpreter and sets Django up


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return bool(cursor.fetchone()[0])


def guest_row_locked(guest_pk: Any) -> bool:
    try:
        with transaction.atomic():
            users = get_user_model()._default_manager.select_for_update(nowait=True)
            users.get(pk=guest_pk)
    except DatabaseError:  # "could not obtain lock on row"
        return True
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hook", ["linking", "deleting"])
def test_a_worker_killed_mid_link_leaves_the_guest_intact(hook: str) -> None:
    member = make_registered_user()
    _client, guest = signed_in_guest()
    give_data(guest)
    before, mine = counts(), owned(guest)

    context = multiprocessing.get_context("spawn")
    reached, report = context.Event(), context.Queue()
    child = context.Process(
        target=link_and_hang,
        args=(
            settings.SETTINGS_MODULE,  # tests.settings (or the email-user run's)
            connection.settings_dict["NAME"],  # the test database, not DATABASE_URL's
            guest.pk,
            member.pk,
            hook,
            reached,
            report,
        ),
        daemon=True,
    )
    child.start()
    try:
        backend = None
        deadline = time.monotonic() + WAIT
        while not reached.wait(timeout=0.1):
            try:
                kind, value = report.get_nowait()
            except queue.Empty:
                kind = value = None
            if kind == "error":
                raise AssertionError(f"the child failed:\n{value}")
            if kind == "backend":
                backend = value
            if not child.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"the child never reached {hook} (exit {child.exitcode})")
        if backend is None:
            kind, backend = report.get(timeout=5)
            assert kind == "backend"
        # Mid-link: the child holds the guest's user row and nothing is visible yet.
        assert guest_row_locked(guest.pk)
        assert owned(member) == {"notes": 0, "baskets": 0, "items": 0}

        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=WAIT)
        assert child.exitcode == -signal.SIGKILL
        wait_until(lambda: not backend_alive(backend), "PostgreSQL to end the backend")
        wait_until(lambda: not guest_row_locked(guest.pk), "the lock to go")
    finally:
        if child.is_alive():
            child.kill()
            child.join(timeout=WAIT)
        report.close()
        report.join_thread()

    # PostgreSQL rolled the whole link back.
    assert counts() == before
    assert owned(guest) == mine
    assert owned(member) == {"notes": 0, "baskets": 0, "items": 0}
    assert Guest.objects.filter(user_id=guest.pk).exists()
    # A fresh link goes through.
    result = link_guest(guest, member)
    assert result.guest_deleted
    assert owned(member) == mine
    assert not Guest.objects.filter(user_id=guest.pk).exists()
