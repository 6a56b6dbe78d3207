"""``anonauth.policy``: the hook before creation and the live-guest cap per network."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from anonauth import policy, upgrade
from anonauth.exceptions import CreationRefused, LiveGuestCapReached
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT
from tests.testapp import policy_hooks
from tests.threads import run_together

pytestmark = pytest.mark.django_db

SIGN_IN = "/auth/anonymous/sign-in/"
LAZY = "/guest-fn/"
HOOK = "tests.testapp.policy_hooks.refuse_beta"


def browser(address: str = "198.51.100.7", **headers: Any) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, REMOTE_ADDR=address, **headers)
    client.cookies["probe"] = "1"  # a client that keeps cookies (ANONAUTH_REQUIRE_COOKIE)
    return client


def lazy_refusal(client: Client) -> str | None:
    response = client.get(LAZY)
    assert response.status_code == 200
    body = response.json()
    return None if body["is_guest"] else body["refusal"]


class TestBeforeCreate:
    @pytest.fixture(autouse=True)
    def hook(self, settings: Any) -> None:
        settings.ANONAUTH_BEFORE_CREATE = HOOK
        policy_hooks.SEEN.clear()

    def test_api_refusal_has_the_hooks_code_and_status(self) -> None:
        response = Client(HTTP_X_BETA="no").post(SIGN_IN)
        assert response.status_code == 451
        assert response.json() == {"code": "closed_beta", "detail": "Closed beta."}
        assert not get_user_model().objects.exists()

    def test_lazy_refusal_stays_anonymous(self) -> None:
        assert lazy_refusal(browser(HTTP_X_BETA="no")) == "closed_beta"
        assert not Guest.objects.exists()

    def test_the_hook_sees_the_request_and_admits(self) -> None:
        assert Client(HTTP_X_BETA="yes").post(SIGN_IN).status_code == 201
        assert lazy_refusal(browser(HTTP_X_BETA="yes")) is None
        assert [r.headers["X-Beta"] for r in policy_hooks.SEEN] == ["yes", "yes"]
        assert Guest.objects.count() == 2

    def test_not_asked_for_a_returning_guest(self) -> None:
        client = browser()
        client.get(LAZY)
        client.get(LAZY)
        assert len(policy_hooks.SEEN) == 1

    def test_a_broken_hook_fails_closed_and_is_logged(self, caplog: Any, settings: Any) -> None:
        settings.ANONAUTH_BEFORE_CREATE = "tests.testapp.policy_hooks.broken"
        with caplog.at_level(logging.ERROR, logger="anonauth"):
            response = Client().post(SIGN_IN)
            refusal = lazy_refusal(browser())
        assert (response.status_code, response.json()["code"]) == (503, "before_create_failed")
        assert refusal == "before_create_failed"
        assert "ANONAUTH_BEFORE_CREATE raised" in caplog.text
        assert not get_user_model().objects.exists()

    def test_runs_after_the_other_gates(self) -> None:
        with override_settings(ANONAUTH_ENABLED=False):
            Client().post(SIGN_IN)
        assert policy_hooks.SEEN == []


class TestLiveGuestCap:
    @pytest.fixture(autouse=True)
    def cap(self, settings: Any) -> None:
        settings.ANONAUTH_LIVE_GUEST_CAP = 2

    def test_api_refuses_over_the_cap_per_network(self) -> None:
        statuses = [browser(f"198.51.100.{n}").post(SIGN_IN).status_code for n in range(3)]
        assert statuses == [201, 201, 429]
        response = browser("198.51.100.200").post(SIGN_IN)
        assert response.json()["code"] == "live_guest_cap"
        assert browser("198.51.101.1").post(SIGN_IN).status_code == 201  # another /24
        assert Guest.objects.count() == 3

    def test_lazy_path_stays_anonymous(self) -> None:
        refusals = [lazy_refusal(browser("203.0.113.9")) for _ in range(3)]
        assert refusals == [None, None, "live_guest_cap"]

    def test_ipv6_counts_per_64(self) -> None:
        assert browser("2001:db8:1:2::1").post(SIGN_IN).status_code == 201
        assert browser("2001:db8:1:2::ffff").post(SIGN_IN).status_code == 201
        assert browser("2001:db8:1:2:aaaa::1").post(SIGN_IN).status_code == 429
        assert browser("2001:db8:1:3::1").post(SIGN_IN).status_code == 201

    def test_only_a_keyed_hash_is_stored(self) -> None:
        browser("198.51.100.7").post(SIGN_IN)
        key = Guest.objects.get().network_key
        assert key is not None
        assert len(key) == 64
        assert "198" not in key
        with override_settings(SECRET_KEY="another-secret-key-for-this-test-only-0123456789"):
            browser("198.51.100.7").post(SIGN_IN)
        assert len(set(Guest.objects.values_list("network_key", flat=True))) == 2

    def test_an_upgrade_or_purge_ends_live(self) -> None:
        clients = [browser(f"198.51.100.{n}") for n in (1, 2)]
        for client in clients:
            client.post(SIGN_IN)
        first = Guest.objects.order_by("created_at").first()
        assert first is not None
        upgrade.upgrade_guest(first.user, email="a@example.com", password="correct horse 9!")
        assert browser("198.51.100.3").post(SIGN_IN).status_code == 201
        Guest.objects.order_by("created_at").first().user.delete()  # type: ignore[union-attr]
        assert browser("198.51.100.4").post(SIGN_IN).status_code == 201
        assert browser("198.51.100.5").post(SIGN_IN).status_code == 429

    def test_the_clients_own_racing_guest_is_not_counted(self, settings: Any) -> None:
        """A concurrent first request of the client that just created a guest goes on
        to claim that guest (same creation key); the cap must not refuse it first."""
        settings.ANONAUTH_LIVE_GUEST_CAP = 1
        browser().post(SIGN_IN)
        guest = Guest.objects.get()
        Guest.objects.filter(pk=guest.pk).update(creation_key="c" * 64)
        assert guest.network_key is not None
        policy.reserve_network(guest.network_key, "c" * 64)  # its own: admitted
        with pytest.raises(LiveGuestCapReached):
            policy.reserve_network(guest.network_key, "d" * 64)

    def test_no_address_is_not_capped(self) -> None:
        assert [browser("").post(SIGN_IN).status_code for _ in range(3)] == [201] * 3
        assert not Guest.objects.filter(network_key__isnull=False).exists()

    def test_count_uses_the_index(self) -> None:
        key = policy.network_key(browser().get("/csrf/").wsgi_request)
        assert key is not None
        with CaptureQueriesContext(connection) as queries:
            policy.reserve_network(key, None)
        counts = [q["sql"] for q in queries.captured_queries if "COUNT" in q["sql"].upper()]
        assert len(counts) == 1
        explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        with connection.cursor() as cursor:
            cursor.execute(explain + counts[0])
            plan = " ".join(str(row) for row in cursor.fetchall())
        assert "network_key" in plan


@override_settings(ANONAUTH_LIVE_GUEST_CAP=None, ANONAUTH_BEFORE_CREATE=None)
def test_cap_off_stores_no_network() -> None:
    browser().post(SIGN_IN)
    assert Guest.objects.get().network_key is None


class TestQueries:
    """The hook and the cap add no query to a returning guest's request; the cap adds
    its lock and one count to a creation (PostgreSQL; the count alone on SQLite)."""

    def queries(self, run: Any) -> int:
        with CaptureQueriesContext(connection) as captured:
            run()
        return len(captured.captured_queries)

    def steady(self) -> int:
        client = browser()
        client.get(LAZY)
        return self.queries(lambda: client.get(LAZY))

    def creation(self) -> int:
        Guest.objects.all().delete()
        return self.queries(lambda: browser().get(LAZY))

    def test_steady_request_unchanged(self) -> None:
        plain = self.steady()
        with override_settings(ANONAUTH_BEFORE_CREATE=HOOK, ANONAUTH_LIVE_GUEST_CAP=5):
            assert self.steady() == plain

    def test_creation_adds_the_cap_query(self) -> None:
        plain = self.creation()
        with override_settings(ANONAUTH_BEFORE_CREATE=HOOK):
            assert self.creation() == plain
        # The count; on PostgreSQL its lock is taken by the statement that draws the key.
        with override_settings(ANONAUTH_LIVE_GUEST_CAP=5):
            assert self.creation() == plain + 1


CAP = 3
RACERS = 10
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="thread races need PostgreSQL"
)


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db(transaction=True)
@override_settings(ANONAUTH_LIVE_GUEST_CAP=CAP, ANONAUTH_RATE_LIMIT=None)
def test_cap_holds_under_concurrent_creation() -> None:
    clients = [browser(f"192.0.2.{n}") for n in range(RACERS)]
    results = run_together(*[lambda c=c: c.post(SIGN_IN).status_code for c in clients])
    assert sorted(results) == [201] * CAP + [429] * (RACERS - CAP)
    assert Guest.objects.count() == CAP


def test_a_hook_refusal_without_a_code_is_403(settings: Any, monkeypatch: Any) -> None:
    def refuse(request: Any) -> None:
        raise CreationRefused()

    monkeypatch.setattr(policy_hooks, "refuse_beta", refuse)
    settings.ANONAUTH_BEFORE_CREATE = HOOK
    response = Client().post(SIGN_IN)
    assert (response.status_code, response.json()["code"]) == (403, "creation_refused")
    assert CreationRefused(status=200).status == 403  # never a success or a 5xx
