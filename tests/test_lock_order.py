"""Every pair of operations that share a guest's rows, raced on PostgreSQL.

Upgrade, link, delete and purge all lock a guest's user row and its ``Guest`` row. Each
test lets one operation stop *inside its transaction* (a receiver or hook that holds
until released), starts the other on the same guest, waits until that one is blocked
on a lock (or has finished), then releases the first. So the overlap is the same on
every run, whatever the timing: "A holds its locks, then B starts".

Whatever the interleaving, exactly one operation wins, the loser reports why with one
of anonauth's errors (never a ``DatabaseError`` such as ``deadlock detected``), and no
row is lost, duplicated or left half-moved: every test counts the related rows
(``tests.linkapp`` notes, drafts and team fans, ``tests.testapp``'s basket and its items) before
and after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection
from django.db.models.signals import post_delete, post_save
from django.test import Client, override_settings
from django.utils import timezone

from anonauth import signals
from anonauth.exceptions import NotGuest
from anonauth.guests import create_guest, delete_guest
from anonauth.link import LinkResult, link_guest
from anonauth.models import Guest
from anonauth.purge import PurgeResult, purge_guests
from anonauth.test import capture_signal, connected, make_registered_user
from anonauth.upgrade import upgrade_guest
from tests.conftest import BROWSER_AGENT
from tests.linkapp.models import Draft, Note, Team
from tests.purge_helpers import fill_cart
from tests.testapp.models import Basket, BasketItem
from tests.threads import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 10  # seconds; a safety net against hanging, reached only when something is wrong
POLL = 0.02
UPGRADE_URL = "/auth/anonymous/upgrade/"
SIGN_IN_URL = "/auth/anonymous/sign-in/"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
MAX_AGE = timedelta(days=30)

NOTES = 5
ITEMS = 2
# What every guest of these tests owns, per relation (see owned()).
GUEST_DATA = {"notes": NOTES, "drafts": 1, "fans": 1, "baskets": 1, "items": ITEMS}
NOTHING = dict.fromkeys(GUEST_DATA, 0)

LINK_REPEATS = 20  # the deadlock scenario of the report
REPEATS = 5


# Data


def give_data(user: Any) -> None:
    Note.objects.bulk_create(Note(author=user, text=f"n{i}") for i in range(NOTES))
    Draft.objects.create(editor=user, title="draft")
    Team.objects.create(name=f"team of {user.pk}").fans.add(user)
    fill_cart(user, ITEMS)


def guest_with_data(*, stale: bool = False) -> Any:
    guest = create_guest()
    give_data(guest)
    if stale:
        Guest.objects.filter(pk=guest.pk).update(last_seen=timezone.now() - timedelta(days=90))
    return guest


def _fans() -> Any:
    through = Team.fans.through
    return through.objects, Team._meta.get_field("fans").m2m_reverse_name()


def owned(user_pk: Any) -> dict[str, int]:
    """The rows that point at ``user_pk``, per relation."""
    fans, user_column = _fans()
    return {
        "notes": Note.objects.filter(author_id=user_pk).count(),
        "drafts": Draft.objects.filter(editor_id=user_pk).count(),
        "fans": fans.filter(**{user_column: user_pk}).count(),
        "baskets": Basket.objects.filter(owner_id=user_pk).count(),
        "items": BasketItem.objects.filter(basket__owner_id=user_pk).count(),
    }


def totals() -> dict[str, int]:
    """Every row of the related tables, whoever owns it."""
    fans, _ = _fans()
    return {
        "notes": Note.objects.count(),
        "drafts": Draft.objects.count(),
        "orphan drafts": Draft.objects.filter(editor__isnull=True).count(),
        "fans": fans.count(),
        "teams": Team.objects.count(),
        "baskets": Basket.objects.count(),
        "items": BasketItem.objects.count(),
    }


def without_guests(before: dict[str, int], guests: int) -> dict[str, int]:
    """``totals()`` once ``guests`` guests went with their data: notes, fans, baskets and
    items cascade; drafts stay with no editor (SET_NULL); teams stay."""
    after = dict(before)
    for name in ("notes", "fans", "baskets", "items"):
        after[name] -= GUEST_DATA[name] * guests
    after["orphan drafts"] += GUEST_DATA["drafts"] * guests
    return after


def user_exists(pk: Any) -> bool:
    return bool(get_user_model()._base_manager.filter(pk=pk).exists())


def is_guest_row(pk: Any) -> bool:
    return bool(Guest.objects.filter(pk=pk).exists())


def fresh(pk: Any) -> Any:
    """The user as the database has it now (a thread's own instance)."""
    return get_user_model()._base_manager.get(pk=pk)


# The race


class Hold:
    """A point inside the first operation's transaction where it stops until released."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.times = 0

    def __call__(self) -> None:
        self.times += 1
        if self.times > 1:
            return
        self.reached.set()
        if not self.release.wait(WAIT):
            raise AssertionError("the hold was never released")


@dataclass
class Outcome:
    first: Any  # what the first operation returned, or the exception it raised
    second: Any
    second_waited: bool  # whether the second was seen waiting for a lock
    held: int  # how often the first reached its hold point (1: the race took place)

    def check_no_database_error(self) -> None:
        for name in ("first", "second"):
            result = getattr(self, name)
            assert not isinstance(result, DatabaseError), (
                f"the {name} operation failed in the database: "
                f"{type(result).__name__}: {str(result).strip()}"
            )
        assert self.held == 1, f"the first operation reached its hold point {self.held} times"


def race(first: Callable[[], Any], second: Callable[[], Any], hold: Hold) -> Outcome:
    """Run ``first`` until it reaches ``hold`` inside its transaction, then ``second``;
    release ``first`` once ``second`` waits for a lock (or is done). Each runs in its
    own thread on its own connection (tests.threads.run_together)."""
    second_done = threading.Event()

    def run_first() -> Any:
        try:
            return first()
        finally:
            hold.reached.set()  # failed before its hold point: do not keep the others waiting

    def run_second() -> Any:
        try:
            if not hold.reached.wait(WAIT):
                raise AssertionError("the first operation never reached its hold point")
            return second()
        finally:
            second_done.set()

    def referee() -> bool:
        try:
            if not hold.reached.wait(WAIT):
                return False
            return blocked_or_done(second_done)
        finally:
            hold.release.set()

    first_result, second_result, waited = run_together(run_first, run_second, referee)
    if isinstance(waited, Exception):
        raise waited
    return Outcome(first_result, second_result, bool(waited), hold.times)


def blocked_or_done(done: threading.Event) -> bool:
    """Wait until another connection to this database waits for a lock (True), or
    ``done`` is set (False). Only the second operation can be waiting: the first is
    stopped in Python, at its hold point."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if done.is_set():
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(POLL)
    raise AssertionError("the second operation neither waited for a lock nor finished")


@contextmanager
def link_holds(guest_pk: Any) -> Iterator[Hold]:
    """A ``guest_linking`` receiver that stops the link of ``guest_pk``, inside its
    transaction, until released (the receiver that slept in the report)."""
    hold = Hold()

    def receiver(sender: Any, guest: Any, **kwargs: Any) -> None:
        if guest.pk == guest_pk:
            hold()

    with connected(signals.guest_linking, receiver):
        yield hold


@contextmanager
def upgrade_holds(user_pk: Any) -> Iterator[Hold]:
    """Stops ``upgrade_guest`` of ``user_pk`` inside its transaction, right after it saved
    the user (the guest flag removed, the email not yet checked)."""
    hold = Hold()

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.pk == user_pk:
            hold()

    with connected(post_save, receiver, sender=get_user_model()):
        yield hold


@contextmanager
def delete_holds(user_pk: Any) -> Iterator[Hold]:
    """Stops the deletion of ``user_pk`` inside its transaction, once the user row (and
    everything that cascades) is deleted."""
    hold = Hold()

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.pk == user_pk:
            hold()

    with connected(post_delete, receiver, sender=get_user_model()):
        yield hold


_purge_hold: list[Hold] = []


def hold_the_batch(users: Any) -> list[Any]:
    """``ANONAUTH_PURGE_SPARE`` hook: stops the purge inside its first batch's
    transaction, with the batch's rows locked; spares nobody."""
    if _purge_hold:
        _purge_hold[0]()
    return []


@contextmanager
def purge_holds() -> Iterator[Hold]:
    hold = Hold()
    _purge_hold.append(hold)
    try:
        with override_settings(ANONAUTH_PURGE_SPARE=f"{__name__}.hold_the_batch"):
            yield hold
    finally:
        _purge_hold.clear()


@contextmanager
def outcomes() -> Iterator[dict[str, list[Any]]]:
    """The user ids each after-commit signal reported while the block ran."""
    with (
        capture_signal(signals.guest_linked) as linked,
        capture_signal(signals.guest_upgraded) as upgraded,
        capture_signal(signals.guest_deleted) as deleted,
        capture_signal(signals.guests_purged) as purged,
    ):
        reported: dict[str, list[Any]] = {}
        yield reported
    reported["linked"] = [call["guest_id"] for call in linked]
    reported["upgraded"] = [call["user"].pk for call in upgraded]
    reported["deleted"] = [call["user_id"] for call in deleted]
    reported["purged"] = [pk for call in purged for pk in call["user_ids"]]


def winners(reported: dict[str, list[Any]], pk: Any) -> list[str]:
    """The operations whose committed outcome the signals report for ``pk``."""
    return [name for name, pks in reported.items() for _ in range(pks.count(pk))]


# The operations, each on a fresh instance in its own thread


def linking(guest_pk: Any, member: Any) -> Callable[[], Any]:
    return lambda: link_guest(fresh(guest_pk), member)


def upgrading(user_pk: Any) -> Callable[[], Any]:
    return lambda: upgrade_guest(fresh(user_pk), email=EMAIL, password=PASSWORD)


def deleting(user_pk: Any) -> Callable[[], Any]:
    return lambda: delete_guest(fresh(user_pk))


def purging() -> PurgeResult:
    return purge_guests(older_than=MAX_AGE)


# The checks


def check_linked(result: Any, guest_pk: Any, member: Any, before: dict[str, int]) -> None:
    assert isinstance(result, LinkResult), result
    assert result.guest_deleted
    assert result.moved.get("linkapp.Note.author") == NOTES, result.moved
    assert not user_exists(guest_pk), "the linked guest user is still there"
    assert not is_guest_row(guest_pk)
    assert owned(member.pk) == GUEST_DATA, "the guest's rows did not all reach the account"
    assert owned(guest_pk) == NOTHING
    assert totals() == before, "rows were lost or duplicated"


def check_upgraded(user_pk: Any, member: Any, before: dict[str, int]) -> None:
    assert user_exists(user_pk), "the upgraded user is gone"
    user = fresh(user_pk)
    assert not is_guest_row(user_pk), "the upgraded user is still a guest"
    assert getattr(user, user.get_email_field_name()) == EMAIL
    assert user.check_password(PASSWORD)
    assert owned(user_pk) == GUEST_DATA, "the upgraded user lost rows"
    if member is not None:
        assert owned(member.pk) == NOTHING, "rows moved to the account"
    assert totals() == before, "rows were lost or duplicated"


def check_gone(user_pk: Any, before: dict[str, int], *, guests: int = 1) -> None:
    """``user_pk`` went with its data; nothing of it reached anyone else."""
    assert not user_exists(user_pk)
    assert not is_guest_row(user_pk)
    assert owned(user_pk) == NOTHING
    assert totals() == without_guests(before, guests), "rows were lost or left behind"


def check_purge_counts(result: PurgeResult, purged_ids: list[Any]) -> None:
    assert result.purged == len(purged_ids) == len(set(purged_ids)), (result, purged_ids)
    assert result.examined >= result.purged
    assert result.deleted.get(get_user_model()._meta.label) == result.purged, result.deleted
    assert result.deleted.get("linkapp.Note", 0) == NOTES * result.purged, result.deleted


# 1. link x upgrade


@pytest.mark.parametrize("run", range(LINK_REPEATS))
def test_upgrade_while_a_link_is_in_progress(run: int) -> None:
    """The report: a ``guest_linking`` receiver is slow, and the guest upgrades meanwhile.
    Exactly one wins; never ``deadlock detected``."""
    guest, member = guest_with_data(), make_registered_user("member@example.com")
    before = totals()

    with outcomes() as reported, link_holds(guest.pk) as hold:
        outcome = race(linking(guest.pk, member), upgrading(guest.pk), hold)

    outcome.check_no_database_error()
    linked, upgraded = outcome.first, outcome.second
    if isinstance(linked, LinkResult):
        assert isinstance(upgraded, NotGuest), upgraded
        check_linked(linked, guest.pk, member, before)
        assert winners(reported, guest.pk) == ["linked"], reported
    else:
        assert isinstance(linked, NotGuest), linked
        assert not isinstance(upgraded, Exception), upgraded
        check_upgraded(guest.pk, member, before)
        assert winners(reported, guest.pk) == ["upgraded"], reported


@pytest.mark.parametrize("run", range(REPEATS))
def test_link_while_an_upgrade_is_in_progress(run: int) -> None:
    """The other way round: the upgrade holds its transaction, then the guest signs into
    an account. The upgrade commits first, so the link finds no guest."""
    guest, member = guest_with_data(), make_registered_user("member@example.com")
    before = totals()

    with outcomes() as reported, upgrade_holds(guest.pk) as hold:
        outcome = race(upgrading(guest.pk), linking(guest.pk, member), hold)

    outcome.check_no_database_error()
    upgraded, linked = outcome.first, outcome.second
    assert not isinstance(upgraded, Exception), upgraded
    assert isinstance(linked, NotGuest), linked
    check_upgraded(guest.pk, member, before)
    assert winners(reported, guest.pk) == ["upgraded"], reported


# 2. link x upgrade over the API


def signed_in_guest() -> tuple[Client, Any]:
    client = Client(HTTP_USER_AGENT=BROWSER_AGENT)
    client.cookies["seen"] = "1"
    response = client.post(SIGN_IN_URL)
    assert response.status_code == 201, response.content
    user_pk = response.json()["user"]["id"]
    give_data(fresh(user_pk))
    return client, user_pk


@pytest.mark.parametrize("run", range(REPEATS))
def test_api_upgrade_while_a_link_is_in_progress(run: int) -> None:
    """``POST upgrade/`` while the guest is being linked: 200 or 403 ``not_guest``, never
    503 (the deadlock's loser)."""
    client, guest_pk = signed_in_guest()
    member = make_registered_user("member@example.com")
    before = totals()

    def upgrade_over_the_api() -> tuple[int, Any]:
        response = client.post(UPGRADE_URL, {"email": EMAIL, "password": PASSWORD})
        return response.status_code, response.json()

    with outcomes() as reported, link_holds(guest_pk) as hold:
        outcome = race(linking(guest_pk, member), upgrade_over_the_api, hold)

    outcome.check_no_database_error()
    linked, (status, body) = outcome.first, outcome.second
    assert (status, body.get("code")) in {(200, None), (403, "not_guest")}, (status, body)
    if status == 403:
        check_linked(linked, guest_pk, member, before)
        assert winners(reported, guest_pk) == ["linked"], reported
    else:
        assert isinstance(linked, NotGuest), linked
        assert body["user"]["id"] == guest_pk
        assert body["user"]["is_guest"] is False
        check_upgraded(guest_pk, member, before)
        assert winners(reported, guest_pk) == ["upgraded"], reported


# 3. link x delete


@pytest.mark.parametrize("run", range(REPEATS))
def test_delete_while_a_link_is_in_progress(run: int) -> None:
    guest, member = guest_with_data(), make_registered_user("member@example.com")
    before = totals()

    with outcomes() as reported, link_holds(guest.pk) as hold:
        outcome = race(linking(guest.pk, member), deleting(guest.pk), hold)

    outcome.check_no_database_error()
    linked, deleted = outcome.first, outcome.second
    if isinstance(linked, LinkResult):
        assert deleted is None or isinstance(deleted, NotGuest), deleted
        check_linked(linked, guest.pk, member, before)
        assert winners(reported, guest.pk) == ["linked"], reported
    else:
        assert isinstance(linked, NotGuest), linked
        assert deleted is None, deleted
        check_gone(guest.pk, before)
        assert owned(member.pk) == NOTHING, "rows moved to the account"
        assert winners(reported, guest.pk) == ["deleted"], reported


@pytest.mark.parametrize("run", range(REPEATS))
def test_link_while_a_delete_is_in_progress(run: int) -> None:
    guest, member = guest_with_data(), make_registered_user("member@example.com")
    before = totals()

    with outcomes() as reported, delete_holds(guest.pk) as hold:
        outcome = race(deleting(guest.pk), linking(guest.pk, member), hold)

    outcome.check_no_database_error()
    deleted, linked = outcome.first, outcome.second
    assert deleted is None, deleted
    assert isinstance(linked, NotGuest), linked
    check_gone(guest.pk, before)
    assert owned(member.pk) == NOTHING, "rows moved to the account"
    assert winners(reported, guest.pk) == ["deleted"], reported


# 4. upgrade x purge


@pytest.mark.parametrize("run", range(REPEATS))
def test_purge_while_a_stale_guest_upgrades(run: int) -> None:
    """The upgrade holds its transaction; the purge passes over the guest without
    waiting, purges the other stale guest, and the upgraded user keeps its data."""
    target, bystander = guest_with_data(stale=True), guest_with_data(stale=True)
    before = totals()

    with outcomes() as reported, upgrade_holds(target.pk) as hold:
        outcome = race(upgrading(target.pk), purging, hold)

    outcome.check_no_database_error()
    upgraded, result = outcome.first, outcome.second
    assert not isinstance(upgraded, Exception), upgraded
    assert isinstance(result, PurgeResult), result
    assert not outcome.second_waited, "the purge waited for the upgrade's locks"
    assert reported["purged"] == [bystander.pk], reported
    check_purge_counts(result, reported["purged"])
    assert result.purged == 1
    assert winners(reported, target.pk) == ["upgraded"], reported
    assert not user_exists(bystander.pk)
    assert owned(bystander.pk) == NOTHING
    check_upgraded(target.pk, None, without_guests(before, 1))


@pytest.mark.parametrize("run", range(REPEATS))
def test_upgrade_while_a_purge_batch_holds_the_guest(run: int) -> None:
    """The purge's batch holds the stale guest; the upgrade waits, then finds no guest."""
    target, bystander = guest_with_data(stale=True), guest_with_data(stale=True)
    before = totals()

    with outcomes() as reported, purge_holds() as hold:
        outcome = race(purging, upgrading(target.pk), hold)

    outcome.check_no_database_error()
    result, upgraded = outcome.first, outcome.second
    assert isinstance(result, PurgeResult), result
    assert isinstance(upgraded, NotGuest), upgraded
    assert sorted(reported["purged"]) == sorted([target.pk, bystander.pk]), reported
    check_purge_counts(result, reported["purged"])
    assert winners(reported, target.pk) == ["purged"], reported
    check_gone(target.pk, before, guests=2)
    assert not user_exists(bystander.pk)


# 5. delete x purge


@pytest.mark.parametrize("run", range(REPEATS))
def test_purge_while_a_stale_guest_is_deleted(run: int) -> None:
    target, bystander = guest_with_data(stale=True), guest_with_data(stale=True)
    before = totals()

    with outcomes() as reported, delete_holds(target.pk) as hold:
        outcome = race(deleting(target.pk), purging, hold)

    outcome.check_no_database_error()
    deleted, result = outcome.first, outcome.second
    assert deleted is None, deleted
    assert isinstance(result, PurgeResult), result
    assert not outcome.second_waited, "the purge waited for the deletion's locks"
    assert reported["purged"] == [bystander.pk], reported
    check_purge_counts(result, reported["purged"])
    assert winners(reported, target.pk) == ["deleted"], reported
    check_gone(target.pk, before, guests=2)
    assert not user_exists(bystander.pk)


@pytest.mark.parametrize("run", range(REPEATS))
def test_delete_while_a_purge_batch_holds_the_guest(run: int) -> None:
    target, bystander = guest_with_data(stale=True), guest_with_data(stale=True)
    before = totals()

    with outcomes() as reported, purge_holds() as hold:
        outcome = race(purging, deleting(target.pk), hold)

    outcome.check_no_database_error()
    result, deleted = outcome.first, outcome.second
    assert isinstance(result, PurgeResult), result
    assert deleted is None or isinstance(deleted, NotGuest), deleted
    assert sorted(reported["purged"]) == sorted([target.pk, bystander.pk]), reported
    check_purge_counts(result, reported["purged"])
    assert winners(reported, target.pk) == ["purged"], reported  # deleted exactly once
    check_gone(target.pk, before, guests=2)
    assert not user_exists(bystander.pk)
