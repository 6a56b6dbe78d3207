"""``anonauth.metrics``: Prometheus counters on anonauth's events, registered only when on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.http import Http404
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from anonauth import link, metrics, signals
from anonauth.guests import create_guest
from anonauth.models import Guest
from anonauth.purge import purge_guests
from anonauth.test import BROWSER_USER_AGENT, make_guest, make_registered_user
from anonauth.upgrade import upgrade_guest

pytestmark = pytest.mark.django_db

LAZY = "/guest-fn/"
NAMES = {
    "anonauth_guests_created",
    "anonauth_guests_upgraded",
    "anonauth_guests_linked",
    "anonauth_guests_purged",
    "anonauth_refusals",
    "anonauth_purge_duration_seconds",
    "anonauth_live_guests",
}


@pytest.fixture
def on() -> Any:
    with override_settings(ANONAUTH_METRICS=True):
        yield


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def registered() -> set[str]:
    return {family.name for family in REGISTRY.collect() if family.name.startswith("anonauth_")}


def browser(**headers: Any) -> Client:
    client = Client(**{"HTTP_USER_AGENT": BROWSER_USER_AGENT, **headers})
    client.cookies["seen"] = "1"
    return client


class TestOnAndOff:
    def test_off_by_default_nothing_is_registered(self) -> None:
        assert metrics.active is None
        assert registered() == set()
        connected = {key for key, _receiver, *_ in signals.guest_created.receivers}
        assert not any("anonauth.metrics" in str(key) for key in connected)
        with pytest.raises(Http404):
            metrics.metrics_view(RequestFactory().get("/metrics"))

    def test_on_registers_them_and_off_again_removes_them(self) -> None:
        with override_settings(ANONAUTH_METRICS=True):
            assert registered() == NAMES
        assert registered() == set()
        assert metrics.active is None

    @pytest.mark.parametrize(("installed", "expected"), [(True, NAMES), (False, set())])
    def test_auto_follows_the_installation(
        self, monkeypatch: pytest.MonkeyPatch, installed: bool, expected: set[str]
    ) -> None:
        monkeypatch.setattr(metrics, "available", lambda: installed)
        with override_settings(ANONAUTH_METRICS="auto"):
            assert registered() == expected

    def test_installing_twice_registers_once(self, on: None) -> None:
        metrics.install()
        assert registered() == NAMES

    def test_other_settings_leave_them_alone(self, on: None) -> None:
        with override_settings(ANONAUTH_RATE_LIMIT=None):
            assert registered() == NAMES

    def test_ready_syncs(self, on: None) -> None:
        from django.apps import apps

        metrics.uninstall()
        apps.get_app_config("anonauth").ready()
        assert registered() == NAMES


@pytest.mark.usefixtures("on")
class TestCounters:
    def test_created(self, django_capture_on_commit_callbacks: Any) -> None:
        before = sample("anonauth_guests_created_total")
        with django_capture_on_commit_callbacks(execute=True):
            create_guest()
        assert sample("anonauth_guests_created_total") == before + 1

    def test_upgraded_by_method(self, django_capture_on_commit_callbacks: Any) -> None:
        before = sample("anonauth_guests_upgraded_total", method="password")
        with django_capture_on_commit_callbacks(execute=True):
            upgrade_guest(create_guest(), email="new@example.com", password="a long passphrase 42")
        assert sample("anonauth_guests_upgraded_total", method="password") == before + 1

    def test_linked(self, django_capture_on_commit_callbacks: Any) -> None:
        before = sample("anonauth_guests_linked_total")
        with django_capture_on_commit_callbacks(execute=True):
            link.link_guest(create_guest(), make_registered_user())
        assert sample("anonauth_guests_linked_total") == before + 1

    def test_purged_and_the_duration(self, django_capture_on_commit_callbacks: Any) -> None:
        purged, runs = (
            sample("anonauth_guests_purged_total"),
            sample("anonauth_purge_duration_seconds_count"),
        )
        for _ in range(3):
            make_guest(seen_ago=timedelta(days=60))
        with django_capture_on_commit_callbacks(execute=True):
            purge_guests(batch_size=2)
        assert sample("anonauth_guests_purged_total") == purged + 3
        assert sample("anonauth_purge_duration_seconds_count") == runs + 1

    def test_a_dry_run_is_not_timed(self) -> None:
        runs = sample("anonauth_purge_duration_seconds_count")
        purge_guests(dry_run=True)
        assert sample("anonauth_purge_duration_seconds_count") == runs

    def test_refusals_by_code(self) -> None:
        lazy, api = (
            sample("anonauth_refusals_total", code="user_agent_refused"),
            sample("anonauth_refusals_total", code="not_authenticated"),
        )
        browser(HTTP_USER_AGENT="Googlebot/2.1").get(LAZY)
        Client().get("/auth/anonymous/session/")
        assert sample("anonauth_refusals_total", code="user_agent_refused") == lazy + 1
        assert sample("anonauth_refusals_total", code="not_authenticated") == api + 1

    def test_nothing_counts_while_off(self, django_capture_on_commit_callbacks: Any) -> None:
        before = sample("anonauth_guests_created_total")
        with override_settings(ANONAUTH_METRICS=False):
            with django_capture_on_commit_callbacks(execute=True):
                create_guest()
            metrics.count_refusal("rate_limited")
            metrics.observe_purge(1.0)
            metrics.on_guest_created(None)  # a receiver left connected elsewhere
            metrics.on_guest_upgraded(None, method="password")
            metrics.on_guest_linked(None)
            metrics.on_guests_purged(None, user_ids=[1])
        assert sample("anonauth_guests_created_total") == before


@pytest.mark.usefixtures("on")
class TestLiveGuests:
    def test_the_gauge_counts_guests_at_scrape_time(self) -> None:
        create_guest()
        create_guest()
        make_registered_user()
        assert sample("anonauth_live_guests") == 2 == Guest.objects.count()

    def test_one_count_per_scrape_and_none_to_register(self) -> None:
        collector = metrics.LiveGuests()
        with CaptureQueriesContext(connection) as queries:
            collector.describe()
        assert len(queries) == 0
        with CaptureQueriesContext(connection) as queries:
            list(collector.collect())
        assert len(queries) == 1
        assert "COUNT" in queries[0]["sql"].upper()

    def test_a_failed_count_leaves_the_gauge_out(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def down() -> Any:
            raise DatabaseError("down")

        monkeypatch.setattr(metrics.db, "guests", down)
        assert list(metrics.LiveGuests().collect()) == []
        assert "counting live guests" in caplog.text


@pytest.mark.usefixtures("on")
class TestScrapeView:
    def test_the_text_format(self) -> None:
        create_guest()
        response = metrics.metrics_view(RequestFactory().get("/metrics"))
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        text = response.content.decode()
        assert "anonauth_live_guests 1.0" in text
        for name in NAMES - {"anonauth_live_guests"}:
            assert f"# TYPE {name}" in text

    def test_multiprocess_mode(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        create_guest()
        registry = metrics.scrape_registry()
        assert registry is not REGISTRY
        assert registry.get_sample_value("anonauth_live_guests") == 1


class TestNoQueryOnRequests:
    """Metrics on add no query to a steady guest's request nor to a creation."""

    def statements(self, value: bool, run: Any) -> list[str]:
        with override_settings(ANONAUTH_METRICS=value), CaptureQueriesContext(connection) as q:
            run()
        return [query["sql"] for query in q.captured_queries]

    def test_a_steady_guests_request(self) -> None:
        client = browser()
        client.get(LAZY)
        off = self.statements(False, lambda: client.get(LAZY))
        on = self.statements(True, lambda: client.get(LAZY))
        assert len(on) == len(off)  # the session, the user, its guest flag: no more

    def test_a_creation(self, django_capture_on_commit_callbacks: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            off = self.statements(False, lambda: browser().get(LAZY))
            on = self.statements(True, lambda: browser().get(LAZY))
        assert len(on) == len(off) > 0

    def test_a_refusal(self) -> None:
        bot = browser(HTTP_USER_AGENT="Googlebot/2.1")
        assert self.statements(True, lambda: bot.get(LAZY)) == []
