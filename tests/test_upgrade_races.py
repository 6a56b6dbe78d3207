"""Concurrent upgrades on PostgreSQL: threads, each on its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.signals import post_save
from django.test import Client

from anonauth.exceptions import AnonAuthError, EmailInUse, NotGuest
from anonauth.guests import create_guest, is_guest
from anonauth.models import Guest
from anonauth.test import connected
from anonauth.upgrade import upgrade_guest
from tests.threads import BARRIER_TIMEOUT, run_together

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serializes writers, so threads never race",
    ),
]

UPGRADE_URL = "/auth/anonymous/upgrade/"
PASSWORD = "correct horse battery staple"


def upgrade_task(user_id: Any, email: str, password: str = PASSWORD) -> Callable[[], Any]:
    """An upgrade of a user that is a guest now; in the race it may no longer be one."""
    assert is_guest(get_user_model().objects.get(pk=user_id))

    def task() -> Any:
        user = get_user_model().objects.get(pk=user_id)
        return upgrade_guest(user, email=email, password=password)

    return task


def email_of(user: Any) -> str:
    return str(getattr(user, user.get_email_field_name()))


def test_two_guests_racing_for_one_email_over_the_api() -> None:
    def upgrade_over_api(token: str) -> Callable[[], Any]:
        def task() -> Any:
            payload = {"email": "ada@example.com", "password": PASSWORD}
            response = Client().post(
                UPGRADE_URL, payload, HTTP_X_SESSION_TOKEN=token, content_type="application/json"
            )
            body = response.json()
            return response.status_code, body.get("code", body.get("user"))

        return task

    tokens = [Client().post("/auth/anonymous/sign-in/").json()["session_token"] for _ in range(2)]

    results = run_together(*(upgrade_over_api(token) for token in tokens))

    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    assert [body for status, body in results if status == 409] == ["email_in_use"]
    winner = get_user_model().objects.get(email__iexact="ada@example.com")
    assert not is_guest(winner)
    assert Guest.objects.count() == 1  # the loser is still a guest, with its guest email
    loser = Guest.objects.get().user
    assert email_of(loser) != "ada@example.com"
    assert not loser.has_usable_password()


@pytest.mark.auth_user_only  # with a unique email column the second UPDATE waits instead
def test_email_lock_settles_upgrades_that_wrote_the_same_email_at_once() -> None:
    """Both transactions have written the address before either checks it: only the
    lock on the address makes the second check see the first commit."""
    guests = [create_guest(), create_guest()]
    both_wrote = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def wait_for_the_other(sender: Any, instance: Any, **kwargs: Any) -> None:
        if getattr(instance, "email", "") == "ada@example.com":
            both_wrote.wait()

    with connected(post_save, wait_for_the_other, sender=get_user_model()):
        results = run_together(*(upgrade_task(g.pk, "ada@example.com") for g in guests))

    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], EmailInUse)
    assert get_user_model().objects.filter(email__iexact="ada@example.com").count() == 1
    assert Guest.objects.count() == 1


def test_two_upgrades_of_one_guest() -> None:
    guest = create_guest()

    results = run_together(
        upgrade_task(guest.pk, "ada@example.com", "first password 1"),
        upgrade_task(guest.pk, "bob@example.com", "second password 2"),
    )

    errors = [r for r in results if isinstance(r, AnonAuthError)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], NotGuest)
    winner_index = 1 if results[0] is errors[0] else 0
    winner_email, winner_password = [
        ("ada@example.com", "first password 1"),
        ("bob@example.com", "second password 2"),
    ][winner_index]
    stored = get_user_model().objects.get(pk=guest.pk)
    assert not is_guest(stored)
    assert email_of(stored) == winner_email  # all of one upgrade, nothing of the other
    assert stored.check_password(winner_password)
    assert get_user_model().objects.count() == 1
