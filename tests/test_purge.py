from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection, models
from django.db.models import QuerySet
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from anonauth import db, purge, sessions, signals
from anonauth.deletion import Plan
from anonauth.models import Guest
from anonauth.purge import count_stale_guests, purge_guests
from anonauth.test import capture_signal, connected
from tests.linkapp.models import Note
from tests.purge_helpers import add_session, exists, fill_cart, make_guest, make_member
from tests.testapp.models import Basket, BasketItem, GiftWrap, Invoice, Review

pytestmark = pytest.mark.django_db

RunCommits = Callable[..., Any]


def spare_even(users: QuerySet[Any]) -> QuerySet[Any]:
    """An ANONAUTH_PURGE_SPARE hook returning a queryset."""
    return users.filter(pk__in=[u.pk for u in users if u.pk % 2 == 0])


def spare_with_basket(users: QuerySet[Any]) -> list[Any]:
    """An ANONAUTH_PURGE_SPARE hook returning primary keys."""
    return list(Basket.objects.filter(owner__in=users).values_list("owner_id", flat=True))


def spare_users(users: QuerySet[Any]) -> list[Any]:
    """An ANONAUTH_PURGE_SPARE hook returning user instances."""
    return [user for user in users if user.pk % 2 == 1]


class TestWhatGoes:
    def test_stale_guests_go_with_their_data(
        self, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        stale = [make_guest(items=3) for _ in range(3)]
        fresh = make_guest(days_ago=1, items=2)
        member = make_member()
        fill_cart(member, 1)
        Note.objects.create(author=member, text="the member's")

        with django_capture_on_commit_callbacks(execute=True):
            result = purge_guests()

        assert result.purged == 3
        assert not any(exists(user) for user in stale)
        assert exists(fresh)
        assert exists(member)
        assert Guest.objects.count() == 1
        assert Basket.objects.count() == 2
        assert BasketItem.objects.count() == 3
        assert Note.objects.count() == 1
        label = get_user_model()._meta.label
        assert result.deleted == {
            "testapp.BasketItem": 9,
            "testapp.Basket": 3,
            "anonauth.Guest": 3,
            label: 3,
        }

    def test_staleness_is_measured_from_last_seen(self) -> None:
        old_but_active = make_guest(days_ago=1)
        Guest.objects.filter(pk=old_but_active.pk).update(
            created_at=Guest.objects.get(pk=old_but_active.pk).created_at - timedelta(days=365)
        )
        purge_guests()
        assert exists(old_but_active)

    @override_settings(ANONAUTH_MAX_AGE=timedelta(days=7))
    def test_default_age_is_max_age(self) -> None:
        older, younger = make_guest(days_ago=8), make_guest(days_ago=6)
        assert purge_guests().purged == 1
        assert not exists(older)
        assert exists(younger)

    @override_settings(ANONAUTH_MAX_AGE=3600)
    def test_max_age_in_seconds(self) -> None:
        older, younger = make_guest(days_ago=1), make_guest(days_ago=0.01)
        purge_guests()
        assert (exists(older), exists(younger)) == (False, True)

    def test_older_than(self) -> None:
        older, younger = make_guest(days_ago=3), make_guest(days_ago=1)
        purge_guests(older_than=timedelta(days=2))
        assert (exists(older), exists(younger)) == (False, True)

    def test_registered_users_never_go(self) -> None:
        member = make_member()
        purge_guests(older_than=timedelta(0))
        assert exists(member)

    def test_set_null_set_default_and_set_keep_the_rows(self) -> None:
        guest = make_guest()
        review = Review.objects.create(author=guest, moderator=guest, editor=guest)
        purge_guests()
        review.refresh_from_db()
        assert (review.author, review.moderator, review.editor) == (None, None, None)


class TestBatches:
    def test_batches_and_signal_after_each_commit(
        self, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        stale = [make_guest() for _ in range(5)]
        with (
            capture_signal(signals.guests_purged) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            result = purge_guests(batch_size=2)
        assert result.batches == 3
        assert [call["user_ids"] for call in calls] == [
            [stale[0].pk, stale[1].pk],
            [stale[2].pk, stale[3].pk],
            [stale[4].pk],
        ]
        assert {call["sender"] for call in calls} == {get_user_model()}

    def test_signal_waits_for_the_commit(
        self, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        make_guest()
        with capture_signal(signals.guests_purged) as calls:
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                purge_guests()
            assert calls == []
            for callback in callbacks:
                callback()
        assert len(calls) == 1

    def test_a_failing_receiver_is_logged_and_the_purge_goes_on(
        self, django_capture_on_commit_callbacks: RunCommits, caplog: pytest.LogCaptureFixture
    ) -> None:
        stale = [make_guest() for _ in range(2)]

        def broken(**kwargs: Any) -> None:
            raise RuntimeError("receiver failed")

        with (
            connected(signals.guests_purged, broken),
            django_capture_on_commit_callbacks(execute=True),
        ):
            result = purge_guests(batch_size=1)
        assert result.purged == 2
        assert not any(exists(user) for user in stale)
        assert "receiver" in caplog.text

    def test_limit(self) -> None:
        stale = [make_guest() for _ in range(5)]
        result = purge_guests(limit=3, batch_size=2)
        assert result.purged == 3
        assert [exists(user) for user in stale] == [False, False, False, True, True]

    def test_limit_zero_purges_nothing(self) -> None:
        make_guest()
        assert purge_guests(limit=0).purged == 0
        assert Guest.objects.count() == 1

    def test_progress_after_each_batch(self) -> None:
        for _ in range(3):
            make_guest()
        seen: list[tuple[int, int]] = []
        purge_guests(batch_size=2, progress=lambda r: seen.append((r.batches, r.purged)))
        assert seen == [(1, 2), (2, 3)]

    @override_settings(ANONAUTH_PURGE_BATCH_SIZE=2)
    def test_batch_size_setting(self) -> None:
        for _ in range(3):
            make_guest()
        assert purge_guests().batches == 2

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"batch_size": 0}, "batch_size must be positive"),
            ({"limit": -1}, "limit must not be negative"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, int], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            purge_guests(**kwargs)

    def test_queries_per_batch_do_not_grow_with_the_batch(self) -> None:
        def queries_for(guests: int) -> int:
            for _ in range(guests):
                make_guest(items=2, session=True)
            with CaptureQueriesContext(connection) as queries:
                assert purge_guests(batch_size=100).purged == guests
            return len(queries)

        assert queries_for(2) == queries_for(7)

    def test_batches_fit_sqlite_parameter_limit(self) -> None:
        capped = db.max_batch(100_000)
        limit = connection.features.max_query_params
        assert capped == (100_000 if limit is None else min(100_000, limit - db.PARAM_MARGIN))

    def test_dry_run_counts_and_deletes_nothing(
        self, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        stale = [make_guest(items=1, session=True) for _ in range(3)]
        Invoice.objects.create(customer=stale[0])
        with (
            capture_signal(signals.guests_purged) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            result = purge_guests(dry_run=True, batch_size=2)
        assert (result.dry_run, result.purged, result.blocked, result.examined) == (
            True,
            2,
            1,
            3,
        )
        assert result.deleted == {}
        assert result.sessions == 0
        assert all(exists(user) for user in stale)
        assert calls == []

    def test_count_stale_guests(self) -> None:
        make_guest(days_ago=10)
        make_guest(days_ago=40)
        make_member()
        assert count_stale_guests() == 1
        assert count_stale_guests(older_than=timedelta(days=5)) == 2


def locked_in_order(queries: CaptureQueriesContext) -> list[str]:
    """The tables that ``queries`` lock (``FOR UPDATE``), in order."""
    tables = {
        connection.ops.quote_name(model._meta.db_table): model._meta.label
        for model in (get_user_model(), Guest)
    }
    return [
        label
        for query in queries.captured_queries
        if "FOR UPDATE" in query["sql"]
        for table, label in tables.items()
        if f"FROM {table}" in query["sql"]
    ]


class TestLocking:
    @pytest.mark.skipif(
        not connection.features.has_select_for_update_skip_locked, reason="needs SKIP LOCKED"
    )
    def test_user_rows_are_locked_before_guest_rows(self) -> None:
        """The one lock order: candidates are read unlocked, then each batch locks the
        user rows, then the Guest rows."""
        for _ in range(3):
            make_guest()
        with CaptureQueriesContext(connection) as queries:
            assert purge_guests(batch_size=2).purged == 3
        user, guest = get_user_model()._meta.label, Guest._meta.label
        assert locked_in_order(queries) == [user, guest, user, guest]
        assert all("SKIP LOCKED" in q["sql"] for q in queries if "FOR UPDATE" in q["sql"])

    def test_a_dry_run_locks_nothing(self) -> None:
        for _ in range(3):
            make_guest()
        with CaptureQueriesContext(connection) as queries:
            assert purge_guests(batch_size=2, dry_run=True).purged == 3
        assert not any("FOR UPDATE" in query["sql"] for query in queries)


class TestSpare:
    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_even")
    def test_queryset_hook(self) -> None:
        stale = [make_guest() for _ in range(4)]
        result = purge_guests()
        assert result.spared == 2
        assert result.purged == 2
        assert all(exists(user) == (user.pk % 2 == 0) for user in stale)

    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_with_basket")
    def test_primary_keys_hook(self) -> None:
        shopper, idler = make_guest(items=1), make_guest()
        result = purge_guests()
        assert (result.spared, exists(shopper), exists(idler)) == (1, True, False)

    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_users")
    def test_users_hook(self) -> None:
        stale = [make_guest() for _ in range(4)]
        purge_guests()
        assert all(exists(user) == (user.pk % 2 == 1) for user in stale)


class TestBlocked:
    def test_protected_guest_is_skipped_and_reported(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        stale = [make_guest(items=1) for _ in range(3)]
        Invoice.objects.create(customer=stale[1])
        with caplog.at_level(logging.WARNING, logger="anonauth"):
            result = purge_guests()
        assert (result.purged, result.blocked) == (2, 1)
        assert result.blocked_by == {"testapp.Invoice.customer": 1}
        assert result.blocked_ids == [stale[1].pk]
        assert [exists(user) for user in stale] == [False, True, False]
        assert Basket.objects.filter(owner=stale[1]).exists()
        assert "testapp.Invoice.customer" in caplog.text

    def test_restrict_two_levels_down(self) -> None:
        wrapped, plain = make_guest(), make_guest()
        GiftWrap.objects.create(basket=fill_cart(wrapped, 1))
        result = purge_guests()
        assert result.blocked_by == {"testapp.GiftWrap.basket": 1}
        assert (exists(wrapped), exists(plain)) == (True, False)

    def test_reported_ids_are_capped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(purge, "MAX_REPORTED_BLOCKED", 2)
        for _ in range(3):
            Invoice.objects.create(customer=make_guest())
        result = purge_guests(batch_size=2)
        assert (result.blocked, len(result.blocked_ids)) == (3, 2)
        assert result.blocked_by == {"testapp.Invoice.customer": 3}


class TestSessions:
    def test_database_sessions_go(self, django_capture_on_commit_callbacks: RunCommits) -> None:
        stale = make_guest(session=True)
        member_session = add_session(make_member())
        with django_capture_on_commit_callbacks(execute=True):
            result = purge_guests()
        assert result.sessions == 1
        assert not exists(stale)
        assert list(Session.objects.values_list("session_key", flat=True)) == [member_session]

    @pytest.mark.parametrize(
        "engine",
        ["django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.cached_db"],
    )
    def test_cached_sessions_go(
        self, engine: str, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        with override_settings(SESSION_ENGINE=engine):
            store = import_module(engine).SessionStore
            key = add_session(make_guest())
            kept = add_session(make_guest(days_ago=1))
            cache = caches[settings.SESSION_CACHE_ALIAS]
            with django_capture_on_commit_callbacks(execute=True):
                result = purge_guests()
            assert result.sessions == 1
            assert cache.get(store.cache_key_prefix + str(key)) is None
            assert cache.get(store.cache_key_prefix + str(kept)) is not None
            assert not store().exists(key)
            assert store().exists(kept)

    def test_file_sessions_go(
        self, tmp_path: Path, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        engine = "django.contrib.sessions.backends.file"
        with override_settings(SESSION_ENGINE=engine, SESSION_FILE_PATH=str(tmp_path)):
            key = add_session(make_guest())
            with django_capture_on_commit_callbacks(execute=True):
                assert purge_guests().sessions == 1
            assert not import_module(engine).SessionStore().exists(key)
            assert list(tmp_path.iterdir()) == []

    def test_sessions_in_another_database_get_a_plain_key_list(self) -> None:
        assert sessions.key_set(Session, ["a", "b"], "elsewhere") == ["a", "b"]

    @override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
    def test_cookie_sessions_are_out_of_reach(
        self, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        stale = make_guest(session=True)
        Guest.objects.filter(pk=stale.pk).update(session_key="leftover")
        with django_capture_on_commit_callbacks(execute=True):
            result = purge_guests()
        assert (result.purged, result.sessions) == (1, 0)

    def test_a_signed_in_guest_is_signed_out_by_the_purge(
        self, browser: Client, django_capture_on_commit_callbacks: RunCommits
    ) -> None:
        first = browser.get("/ensure/").json()
        assert first["is_guest"]
        key = browser.cookies[settings.SESSION_COOKIE_NAME].value
        assert Guest.objects.get(pk=first["id"]).session_key == key
        Guest.objects.update(last_seen=Guest.objects.get().last_seen - timedelta(days=60))

        with django_capture_on_commit_callbacks(execute=True):
            assert purge_guests().sessions == 1

        assert not Session.objects.filter(session_key=key).exists()
        again = browser.get("/plain/")
        assert again.wsgi_request.user.is_anonymous


class TestCollectorFallback:
    @pytest.fixture
    def collector_plan(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_build = Plan.build

        def build(user_model: type[models.Model]) -> Plan:
            plan = real_build(user_model)
            return Plan(user_model, blockers=plan.blockers, fallback="forced by the test")

        monkeypatch.setattr(Plan, "build", build)

    @pytest.mark.usefixtures("collector_plan")
    def test_collector_deletes_the_same(self) -> None:
        stale = make_guest(items=2)
        review = Review.objects.create(author=stale)
        result = purge_guests()
        assert (result.purged, exists(stale), BasketItem.objects.count()) == (1, False, 0)
        assert result.deleted["testapp.BasketItem"] == 2
        review.refresh_from_db()
        assert review.author is None

    def test_collector_finds_blockers_the_plan_missed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def build(user_model: type[models.Model]) -> Plan:
            return Plan(user_model, fallback="forced by the test")

        monkeypatch.setattr(Plan, "build", build)
        invoiced, wrapped, plain = make_guest(), make_guest(), make_guest(items=1)
        Invoice.objects.create(customer=invoiced)
        GiftWrap.objects.create(basket=fill_cart(wrapped, 1))
        result = purge_guests()
        assert result.purged == 1
        assert result.blocked_by == {"testapp.Invoice": 1, "testapp.GiftWrap": 1}
        assert (exists(invoiced), exists(wrapped), exists(plain)) == (True, True, False)


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
def test_a_cookie_session_is_not_recorded(browser: Client) -> None:
    assert browser.get("/ensure/").json()["is_guest"]
    assert Guest.objects.get().session_key == ""
