from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib import admin, messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory, override_settings

from anonauth.admin import GuestAdmin
from anonauth.management.commands import purge_anonymous
from anonauth.management.commands.purge_anonymous import parse_duration
from anonauth.models import Guest
from tests.purge_helpers import exists, make_guest, make_member
from tests.testapp.models import Invoice

pytestmark = pytest.mark.django_db

MINUTES_45 = 45 / (24 * 60)  # in days


def run(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("purge_anonymous", *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("45s", 45),
        ("3600", 3600),
        ("2w", 14 * 86400),
        (" 7D ", 7 * 86400),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "soon"], "is not a duration"),
        (["--older-than", "3y"], "is not a duration"),
        (["--older-than=-5d"], "is not a duration"),
        (["--older-than", "0"], "longer than zero"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--batch-size", "many"], "--batch-size must be a positive integer"),
        (["--limit", "-1"], "--limit must be a positive integer"),
        (["--older-than", "30m"], "--older-than 30m is not longer than ANONAUTH_TOUCH_INTERVAL"),
        (["--older-than", "1h"], "--older-than 1h is not longer than ANONAUTH_TOUCH_INTERVAL"),
    ],
)
def test_bad_options(args: list[str], message: str) -> None:
    make_guest()
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert Guest.objects.count() == 1


def test_a_cutoff_that_would_purge_active_guests_is_refused() -> None:
    active = make_guest(days_ago=MINUTES_45)  # browsing; last_seen is written hourly
    message = (
        "--older-than 30m is not longer than ANONAUTH_TOUCH_INTERVAL (3600 seconds): guests "
        "are seen only once per that interval, so guests active right now would be purged."
    )
    with pytest.raises(CommandError) as raised:
        run("--older-than", "30m")
    assert str(raised.value) == message
    assert exists(active)


@override_settings(ANONAUTH_MAX_AGE=timedelta(minutes=30))
def test_a_default_cutoff_that_would_purge_active_guests_is_refused() -> None:
    with pytest.raises(CommandError, match=r"^ANONAUTH_MAX_AGE is not longer than ANONAUTH_TOUCH"):
        run()


@override_settings(ANONAUTH_TOUCH_INTERVAL=600)
def test_a_cutoff_longer_than_the_touch_interval() -> None:
    stale = make_guest(days_ago=MINUTES_45)
    assert "Purged 1 guest in " in run("--older-than", "30m")
    assert not exists(stale)


def test_purges_and_summarises() -> None:
    stale = [make_guest(items=1, session=True) for _ in range(3)]
    fresh = make_guest(days_ago=1)
    out = run()
    assert "Purging stale guests: 3 not seen for 30 days." in out
    assert "Purged 3 guests in " in out
    assert "3 sessions." in out
    assert "testapp.Basket 3, testapp.BasketItem 3" in out
    assert not any(exists(user) for user in stale)
    assert exists(fresh)


def test_options() -> None:
    stale = [make_guest(days_ago=3) for _ in range(3)]
    out = run("--older-than", "2d", "--batch-size", "1", "--limit", "2")
    assert "3 not seen for 2 days, at most 2." in out
    assert [exists(user) for user in stale] == [False, False, True]


def test_options_from_code() -> None:
    make_guest(days_ago=3)
    run(older_than="1d", batch_size=5, limit=5)
    assert Guest.objects.count() == 0


def test_dry_run_deletes_nothing() -> None:
    stale = make_guest()
    out = run("--dry-run")
    assert "Counting stale guests: 1 not seen for 30 days." in out
    assert "Dry run: 1 guest would be purged; nothing deleted." in out
    assert "Purged" not in out
    assert exists(stale)


def test_dry_run_progress_and_blocked_guests() -> None:
    stale = [make_guest() for _ in range(3)]
    Invoice.objects.create(customer=stale[0])
    out = run("--dry-run", "--batch-size", "2", verbosity=2)
    assert "  2 of 3 examined (66%), 1 would be purged, " in out
    assert "  3 of 3 examined (100%), 2 would be purged, " in out
    assert "Dry run: 2 guests would be purged; nothing deleted." in out
    assert "Would keep 1 guest that other data protects: testapp.Invoice.customer (1)." in out
    assert "Purged" not in out
    assert ", 1 purged" not in out
    assert all(exists(user) for user in stale)


def test_progress_at_verbosity_2() -> None:
    for _ in range(3):
        make_guest()
    out = run("--batch-size", "2", verbosity=2)
    assert "  2 of 3 examined (66%), 2 purged, " in out
    assert "  3 of 3 examined (100%), 3 purged, " in out


def test_progress_at_verbosity_1_is_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        make_guest()
    monkeypatch.setattr(purge_anonymous, "PROGRESS_INTERVAL", 0.0)
    assert "3 of 3 examined" in run("--batch-size", "2")
    for _ in range(3):
        make_guest()
    monkeypatch.setattr(purge_anonymous, "PROGRESS_INTERVAL", 3600.0)
    assert "examined" not in run("--batch-size", "2")


def test_silent_at_verbosity_0() -> None:
    make_guest()
    Invoice.objects.create(customer=make_guest())
    assert run(verbosity=0) == ""
    assert Guest.objects.count() == 1


def test_reports_blocked_and_spared() -> None:
    blocked = make_guest()
    Invoice.objects.create(customer=blocked)
    spared = make_guest(items=1)
    with override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_with_basket"):
        out = run()
    assert "Spared by ANONAUTH_PURGE_SPARE: 1." in out
    assert (
        f"Kept 1 guest that other data protects: testapp.Invoice.customer (1). "
        f"User ids: {blocked.pk}" in out
    )
    assert exists(spared)


def test_nothing_to_purge() -> None:
    make_member()
    out = run()
    assert "0 not seen" in out
    assert "Purged 0 guests" in out


@override_settings(ANONAUTH_MAX_AGE=timedelta(hours=36), ANONAUTH_TOUCH_INTERVAL=0)
def test_default_age_description() -> None:
    assert "not seen for 36 hours" in run()
    with override_settings(ANONAUTH_MAX_AGE=timedelta(seconds=61)):
        assert "not seen for 61 seconds" in run()
    with override_settings(ANONAUTH_MAX_AGE=timedelta(minutes=1)):
        assert "not seen for 1 minute." in run()


# The admin action, the purge's third adapter, words "nothing purged" the same way
# (its other tests are in tests/test_admin.py).


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (1, "The selected guest was not purged (only stale ones go)."),
        (2, "None of the 2 selected guests was purged (only stale ones go)."),
    ],
)
def test_the_admin_action_when_nothing_was_purged(
    rf: RequestFactory, count: int, message: str
) -> None:
    guests = [make_guest(days_ago=1) for _ in range(count)]
    request = rf.post("/")
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    selected = Guest.objects.filter(pk__in=[user.pk for user in guests])
    GuestAdmin(Guest, admin.site).purge_selected(request, selected)
    assert [(m.level, str(m)) for m in request._messages] == [  # type: ignore[attr-defined]
        (messages.INFO, message)
    ]
    assert all(exists(user) for user in guests)
