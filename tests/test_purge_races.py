"""A purge racing with upgrades, returning guests and another purge.

The between-batches tests run on every database; the thread tests need PostgreSQL's
row locks (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test import override_settings
from django.utils import timezone

from anonauth import signals
from anonauth.exceptions import NotGuest
from anonauth.guests import is_guest
from anonauth.models import Guest
from anonauth.purge import PurgeResult, purge_guests
from anonauth.test import connected
from anonauth.upgrade import upgrade_guest, upgrading
from tests.purge_helpers import exists, make_guest
from tests.testapp.models import BasketItem

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10
PASSWORD = "correct horse battery staple"


def upgrade(user: Any) -> None:
    fresh = type(user)._default_manager.get(pk=user.pk)
    upgrade_guest(fresh, email=f"upgraded{user.pk}@example.com", password=PASSWORD)


@contextmanager
def after_first_batch(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, when the purge's first batch has committed."""
    done: list[bool] = []

    def receiver(**kwargs: Any) -> None:
        if not done:
            done.append(True)
            action()

    with connected(signals.guests_purged, receiver):
        yield
    assert done, "the first batch never committed"


def test_a_guest_upgraded_between_batches_survives() -> None:
    guests = [make_guest(items=1) for _ in range(4)]
    late = guests[3]
    with after_first_batch(lambda: upgrade(late)):
        result = purge_guests(batch_size=2)
    assert result.purged == 3
    late.refresh_from_db()
    assert not is_guest(late)
    assert late.has_usable_password()
    assert BasketItem.objects.filter(basket__owner=late).count() == 1


def test_a_guest_that_comes_back_between_batches_survives() -> None:
    guests = [make_guest() for _ in range(4)]
    back = guests[2]
    with after_first_batch(
        lambda: Guest.objects.filter(pk=back.pk).update(last_seen=timezone.now())
    ):
        result = purge_guests(batch_size=2)
    assert result.purged == 3
    assert exists(back)


def _in_thread(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a thread with its own connection, closed afterwards."""

    def run() -> Any:
        try:
            return func()
        finally:
            connection.close()

    return ThreadPoolExecutor(max_workers=1).submit(run)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_a_guest_upgraded_during_a_purge_survives() -> None:
    guests = [make_guest(items=2) for _ in range(5)]
    target = guests[2]
    locked, finish = threading.Event(), threading.Event()

    def upgrade_slowly() -> None:
        user = type(target)._default_manager.get(pk=target.pk)
        with upgrading(user):  # upgrade_guest's transaction, held open
            user.email = "slow@example.com"
            user.set_password(PASSWORD)
            user.save()
            locked.set()
            assert finish.wait(WAIT)

    upgrade_running = _in_thread(upgrade_slowly)
    assert locked.wait(WAIT)
    result = purge_guests(batch_size=2)  # must not wait for the upgrade's locks
    finish.set()
    upgrade_running.result(timeout=WAIT)

    assert result.purged == 4
    assert [exists(user) for user in guests] == [False, False, True, False, False]
    target.refresh_from_db()
    assert not is_guest(target)
    assert target.has_usable_password()
    assert BasketItem.objects.filter(basket__owner=target).count() == 2


held = threading.Event()
release = threading.Event()


def hold_first_batch(users: QuerySet[Any]) -> list[Any]:
    """A spare hook that keeps the first batch's locks until the test releases them."""
    if not held.is_set():
        held.set()
        assert release.wait(WAIT)
    return []


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_concurrent_purges_share_the_work() -> None:
    guests = [make_guest(items=1) for _ in range(6)]
    held.clear()
    release.clear()
    with override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge_races.hold_first_batch"):
        first = _in_thread(lambda: purge_guests(batch_size=2))
        assert held.wait(WAIT)
        second = purge_guests(batch_size=2)  # skips the two guests the first run holds
        release.set()
        first_result: PurgeResult = first.result(timeout=WAIT)
    assert second.purged == 4
    assert first_result.purged == 2
    assert not any(exists(user) for user in guests)
    assert BasketItem.objects.count() == 0


def _wait_for_a_lock_waiter() -> None:
    """Until another connection waits for a row lock in this database."""
    for _ in range(WAIT * 20):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("nobody waited for a lock")


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_an_upgrade_that_arrives_mid_batch_waits_and_finds_no_guest() -> None:
    guests = [make_guest(items=1) for _ in range(3)]
    target = guests[1]
    held.clear()
    release.clear()
    with override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge_races.hold_first_batch"):
        purging = _in_thread(lambda: purge_guests(batch_size=10))
        assert held.wait(WAIT)  # the batch holds its guests' (and users') rows

        def upgrade_target() -> Any:
            user = type(target)._default_manager.get(pk=target.pk)
            return upgrade_guest(user, email="late@example.com", password=PASSWORD)

        upgrading = _in_thread(upgrade_target)
        _wait_for_a_lock_waiter()
        release.set()
        result: PurgeResult = purging.result(timeout=WAIT)  # no deadlock
    with pytest.raises(NotGuest):
        upgrading.result(timeout=WAIT)
    assert result.purged == 3
    assert not any(exists(user) for user in guests)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_a_guest_whose_user_row_is_locked_is_passed_over() -> None:
    guests = [make_guest() for _ in range(3)]
    locked, finish = threading.Event(), threading.Event()

    def hold_user_row() -> None:
        with transaction.atomic():
            list(type(guests[0])._base_manager.select_for_update().filter(pk=guests[0].pk))
            locked.set()
            assert finish.wait(WAIT)

    holding = _in_thread(hold_user_row)
    assert locked.wait(WAIT)
    result = purge_guests(batch_size=1)  # the first batch is all locked: the run goes on
    finish.set()
    holding.result(timeout=WAIT)
    assert (result.purged, result.examined) == (2, 2)
    assert [exists(user) for user in guests] == [True, False, False]
