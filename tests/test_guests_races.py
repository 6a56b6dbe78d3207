"""Guest creation under concurrency: one cookie, one guest, however many requests race.

The thread tests need PostgreSQL (SQLite serialises writers on one in-memory database
and cannot show the race); each thread drives its own ``Client`` and database
connection, and all of them are released by a ``threading.Barrier`` at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError, connection
from django.db.models.signals import pre_save
from django.test import Client
from django.test.utils import override_settings

from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, connected

THREADS = 10
CSRF_SECRET = "a" * 32  # a well-formed unmasked CSRF secret
SESSION_DATA = {"cart": ["sku-1", "sku-2"], "language": "fr"}

on_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="thread races need PostgreSQL (set DATABASE_URL=postgres://...)",
)


def race_test(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a thread test: PostgreSQL only, real transactions (no test-wide atomic), and
    a rate limit that lets all the racing requests through."""
    limited = override_settings(ANONAUTH_RATE_LIMIT=f"{THREADS * 2}/m")(test)
    marked: Callable[..., None] = pytest.mark.postgres(
        on_postgres(pytest.mark.django_db(transaction=True)(limited))
    )
    return marked


def browser_client(cookies: dict[str, str], **defaults: Any) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, **defaults)
    for name, value in cookies.items():
        client.cookies[name] = value
    return client


def anonymous_session() -> str:
    """Save an anonymous session holding ``SESSION_DATA``; return its key."""
    session = SessionStore()
    session.update(SESSION_DATA)
    session.create()
    assert session.session_key is not None
    return session.session_key


def run_together(request: Callable[[], Any]) -> list[Any]:
    """Call ``request()`` in ``THREADS`` threads released at once; return the results.

    Each thread closes its own database connection; an exception in any thread fails
    the test.
    """
    barrier = threading.Barrier(THREADS, timeout=10)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            results[index] = request()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a request thread hung"
    assert not errors, errors
    return results


def session_of(cookies: SimpleCookie) -> dict[str, Any]:
    """The stored data of the session a response's cookies name."""
    return dict(SessionStore(cookies[settings.SESSION_COOKIE_NAME].value).load())


def the_only_guest() -> Any:
    assert Guest.objects.count() == 1
    assert get_user_model().objects.count() == 1
    return Guest.objects.get().user


# Lazy creation: a guest_allowed view


@race_test
def test_lazy_creation_with_one_session_cookie_creates_one_guest() -> None:
    old_key = anonymous_session()

    def visit() -> tuple[int, dict[str, Any], SimpleCookie]:
        client = browser_client({settings.SESSION_COOKIE_NAME: old_key})
        response = client.get("/guest-fn/")
        return response.status_code, response.json(), response.cookies

    results = run_together(visit)

    guest = the_only_guest()
    assert [(status, body["id"], body["is_guest"]) for status, body, _ in results] == [
        (200, guest.pk, True)
    ] * THREADS
    for _, _, cookies in results:
        assert cookies[settings.SESSION_COOKIE_NAME].value != old_key  # rotated
        session = session_of(cookies)
        assert session[SESSION_KEY] == str(guest.pk)
        assert {k: session.get(k) for k in SESSION_DATA} == SESSION_DATA


@race_test
def test_lazy_creation_with_one_csrf_cookie_creates_one_guest() -> None:
    def visit() -> tuple[int, dict[str, Any]]:
        response = browser_client({settings.CSRF_COOKIE_NAME: CSRF_SECRET}).get("/guest-fn/")
        return response.status_code, response.json()

    results = run_together(visit)

    guest = the_only_guest()
    assert results == [(200, {"id": guest.pk, "is_guest": True, "refusal": None})] * THREADS


# The sign-in API


@race_test
@pytest.mark.parametrize("with_session", [False, True], ids=["csrf-cookie", "session-cookie"])
def test_api_sign_in_with_one_cookie_creates_one_guest(with_session: bool) -> None:
    cookies = {settings.CSRF_COOKIE_NAME: CSRF_SECRET}
    if with_session:
        cookies[settings.SESSION_COOKIE_NAME] = anonymous_session()

    def sign_in() -> tuple[int, Any]:
        client = browser_client(cookies, enforce_csrf_checks=True)
        response = client.post("/auth/anonymous/sign-in/", HTTP_X_CSRFTOKEN=CSRF_SECRET)
        return response.status_code, response.json()

    results = run_together(sign_in)

    guest = the_only_guest()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (THREADS - 1) + [201]
    assert {(body["user"]["id"], body["user"]["is_guest"]) for _, body in results} == {
        (guest.pk, True)
    }


# A browser's parallel requests that the server happens to answer one after another:
# the later ones still carry the cookie the first one replaced.


@pytest.mark.django_db(transaction=True)
def test_a_request_with_the_replaced_session_cookie_gets_the_same_guest() -> None:
    old_key = anonymous_session()
    first = browser_client({settings.SESSION_COOKIE_NAME: old_key}).get("/guest-fn/")
    late = browser_client({settings.SESSION_COOKIE_NAME: old_key}).get("/guest-fn/")

    guest = the_only_guest()
    assert first.json()["id"] == late.json()["id"] == guest.pk
    for response in (first, late):
        session = session_of(response.cookies)
        assert {k: session.get(k) for k in SESSION_DATA} == SESSION_DATA


@pytest.mark.django_db(transaction=True)
def test_a_request_with_the_replaced_csrf_cookie_gets_the_same_guest() -> None:
    first = browser_client({settings.CSRF_COOKIE_NAME: CSRF_SECRET}).get("/guest-fn/")
    late = browser_client({settings.CSRF_COOKIE_NAME: CSRF_SECRET}).get("/guest-fn/")

    guest = the_only_guest()
    assert first.json()["id"] == late.json()["id"] == guest.pk


# A database error during creation leaves nothing half-created


@contextmanager
def failing_guest_insert() -> Iterator[None]:
    """Make the database reject every ``Guest`` insert, after the user row is written."""

    def fail(sender: Any, **kwargs: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM anonauth_no_such_table")  # a real database error

    with connected(pre_save, fail, sender=Guest):
        yield


def lazy_visit(client: Client) -> Any:
    return client.get("/guest-fn/")


def api_sign_in(client: Client) -> Any:
    return client.post("/auth/anonymous/sign-in/")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("entry", [lazy_visit, api_sign_in], ids=["lazy", "sign-in"])
def test_a_database_error_during_creation_leaves_no_user_behind(
    entry: Callable[[Client], Any],
) -> None:
    old_key = anonymous_session()
    cookies = {settings.SESSION_COOKIE_NAME: old_key}

    with failing_guest_insert():
        failed = entry(browser_client(cookies, raise_request_exception=False))

    if entry is lazy_visit:  # the visitor browses on anonymously, told why
        assert (failed.status_code, failed.json()["refusal"]) == (200, "unavailable")
    else:
        assert (failed.status_code, failed.json()["code"]) == (503, "unavailable")
    assert not get_user_model().objects.exists()
    assert not Guest.objects.exists()
    assert SessionStore(old_key).load() == SESSION_DATA  # the visitor's session survives
    # The connection is still usable: the next attempt creates the guest.
    retried = entry(browser_client(cookies))
    assert retried.status_code == (200 if entry is lazy_visit else 201)
    assert the_only_guest().pk is not None


@pytest.mark.django_db(transaction=True)
def test_create_guest_rolls_back_on_a_database_error() -> None:
    from anonauth.guests import create_guest

    with failing_guest_insert(), pytest.raises(DatabaseError):
        create_guest()

    assert not get_user_model().objects.exists()
    assert not Guest.objects.exists()
