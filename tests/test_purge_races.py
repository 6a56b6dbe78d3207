"""A purge racing with upgrades, returning guests and another purge.

The between-batches tests run on every database; the thread tests need PostgreSQL's
row locks (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import threading
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
from anonauth.guests import is_guest
from anonauth.models import Guest
from anonauth.purge import PurgeResult, purge_guests
from example_project.shop.models import CartItem
from tests.purge_helpers import exists, make_guest

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10


def upgrade(user: Any) -> None:
    """What an upgrade does to the user rows (anonauth.upgrade is built elsewhere)."""
    Guest.objects.filter(user=user).delete()
    user.email = f"upgraded{user.pk}@example.com"
    user.set_password("correct horse battery staple")
    user.save()


@contextmanager
def after_first_batch(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, when the purge's first batch has committed."""
    done: list[bool] = []

    def receiver(**kwargs: Any) -> None:
        if not done:
            done.append(True)
            action()

    signals.guests_purged.connect(receiver, weak=False)
    try:
        yield
    finally:
        signals.guests_purged.disconnect(receiver)
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
    assert CartItem.objects.filter(cart__owner=late).count() == 1


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
        with transaction.atomic():
            user = type(target)._base_manager.select_for_update().get(pk=target.pk)
            Guest.objects.select_for_update().get(pk=target.pk)
            upgrade(user)
            locked.set()
            assert finish.wait(WAIT)

    upgrading = _in_thread(upgrade_slowly)
    assert locked.wait(WAIT)
    result = purge_guests(batch_size=2)  # must not wait for the upgrade's locks
    finish.set()
    upgrading.result(timeout=WAIT)

    assert result.purged == 4
    assert [exists(user) for user in guests] == [False, False, True, False, False]
    target.refresh_from_db()
    assert not is_guest(target)
    assert target.has_usable_password()
    assert CartItem.objects.filter(cart__owner=target).count() == 2


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
    assert CartItem.objects.count() == 0
