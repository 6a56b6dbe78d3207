"""``anonauth.observe``: the child loggers record every event once, with no personal data."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client, RequestFactory, override_settings

from anonauth import guests, link, observe, transfer
from anonauth.exceptions import NotGuest
from anonauth.purge import PurgeResult, Shard, purge_guests
from anonauth.tasks import purge_sum
from anonauth.test import BROWSER_USER_AGENT, guest_client, make_registered_user
from anonauth.upgrade import upgrade_guest
from example_project.shop.models import Cart
from tests.linkapp.models import Profile
from tests.purge_helpers import make_guest

pytestmark = pytest.mark.django_db

LAZY = "/guest-fn/"
SIGN_IN = "/auth/anonymous/sign-in/"
LINK = "/auth/anonymous/link/"
UPGRADE = "/auth/anonymous/upgrade/"
TRANSFER = "/auth/anonymous/transfer/"
REDEEM = "/auth/anonymous/transfer/redeem/"
ENTER = "/auth/anonymous/transfer/enter/"
# Record attributes every LogRecord has; the rest came from ``extra``.
STANDARD = set(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", (), None))) | {"message"}


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="anonauth")


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == name]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the record got through ``extra``."""
    return {key: value for key, value in vars(record).items() if key not in STANDARD}


def browser(**headers: Any) -> Client:
    client = Client(**{"HTTP_USER_AGENT": BROWSER_USER_AGENT, **headers})
    client.cookies["seen"] = "1"
    return client


def csrf(client: Client) -> dict[str, str]:
    return {settings.CSRF_HEADER_NAME: client.cookies[settings.CSRF_COOKIE_NAME].value}


def signed_in_guest(client: Client) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session[SESSION_KEY])


class TestGatesOnTheLazyPath:
    @pytest.mark.parametrize(
        ("client_kwargs", "code"),
        [
            ({"HTTP_USER_AGENT": "Googlebot/2.1"}, "user_agent_refused"),
            ({"HTTP_X_CAPTCHA": "no"}, "captcha_failed"),
            ({"HTTP_X_BETA": "no"}, "closed_beta"),
        ],
    )
    @override_settings(
        ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify",
        ANONAUTH_BEFORE_CREATE="tests.testapp.policy_hooks.refuse_beta",
    )
    def test_each_refusal_is_logged_once_with_its_code(
        self, caplog: pytest.LogCaptureFixture, client_kwargs: dict[str, str], code: str
    ) -> None:
        if code == "closed_beta":
            client_kwargs = {**client_kwargs, "HTTP_X_CAPTCHA": "ok"}
        browser(**client_kwargs).get(LAZY)
        [record] = records(caplog, "anonauth.gates")
        assert record.levelno == logging.INFO
        assert fields(record) == {
            "event": "refused",
            "code": code,
            "where": "lazy",
            "status": None,
            "view": "guest-fn",
            "http_method": "GET",
        }
        assert record.getMessage() == f"anonauth: guest creation refused (lazy): {code}"

    def test_a_cookieless_client(self, caplog: pytest.LogCaptureFixture) -> None:
        Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).get(LAZY)
        [record] = records(caplog, "anonauth.gates")
        assert fields(record)["code"] == guests.NO_COOKIE

    @override_settings(ANONAUTH_RATE_LIMIT="1/m")
    def test_the_rate_limit(self, caplog: pytest.LogCaptureFixture) -> None:
        browser().get(LAZY)
        assert records(caplog, "anonauth.gates") == []  # the first one got its guest
        browser().get(LAZY)
        [record] = records(caplog, "anonauth.gates")
        assert fields(record)["code"] == "rate_limited"

    @override_settings(ANONAUTH_LIVE_GUEST_CAP=1)
    def test_the_live_guest_cap(self, caplog: pytest.LogCaptureFixture) -> None:
        browser(REMOTE_ADDR="198.51.100.7").get(LAZY)
        browser(REMOTE_ADDR="198.51.100.8").get(LAZY)
        [record] = records(caplog, "anonauth.gates")
        assert fields(record)["code"] == "live_guest_cap"

    def test_an_unavailable_cache_is_a_warning(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def down(*args: Any, **kwargs: Any) -> None:
            raise ConnectionError("cache down")

        monkeypatch.setattr(guests.rates, "hit", down)
        browser().get(LAZY)
        refusal = [r for r in records(caplog, "anonauth.gates") if hasattr(r, "event")]
        assert [(r.levelno, fields(r)["code"]) for r in refusal] == [
            (logging.WARNING, "unavailable")
        ]


class TestGatesOfTheAPI:
    @override_settings(ANONAUTH_ENABLED=False)
    def test_a_refused_sign_in(self, caplog: pytest.LogCaptureFixture) -> None:
        response = Client().post(SIGN_IN)
        assert response.status_code == 403
        [record] = records(caplog, "anonauth.gates")
        assert record.levelno == logging.INFO
        assert fields(record) == {
            "event": "refused",
            "code": "disabled",
            "where": "api",
            "status": 403,
            "view": "anonauth:sign-in",
            "http_method": "POST",
        }

    def test_every_error_response_is_counted_once(self, caplog: pytest.LogCaptureFixture) -> None:
        assert Client().get("/auth/anonymous/session/").status_code == 401
        [record] = records(caplog, "anonauth.gates")
        assert (fields(record)["code"], fields(record)["status"]) == ("not_authenticated", 401)

    def test_a_server_error_is_a_warning(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from django.db import DatabaseError

        def broken(request: Any, **kwargs: Any) -> Any:
            raise DatabaseError("down")

        monkeypatch.setattr(guests, "sign_in", broken)
        assert Client().post(SIGN_IN).status_code == 503
        [record] = [r for r in records(caplog, "anonauth.gates") if hasattr(r, "event")]
        assert record.levelno == logging.WARNING
        assert fields(record)["code"] == "unavailable"

    def test_a_response_without_a_code(self) -> None:
        from django.http import Http404
        from rest_framework.request import Request
        from rest_framework.test import APIRequestFactory

        from anonauth.views import exception_handler

        request = Request(APIRequestFactory().get("/"))
        response = exception_handler(Http404(), {"request": request, "view": None})
        assert response is not None
        assert response.status_code == 404


class TestUpgradeAndLink:
    def test_an_upgrade(
        self, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
    ) -> None:
        guest = make_guest(days_ago=0)
        with django_capture_on_commit_callbacks(execute=True):
            upgrade_guest(guest, email="new@example.com", password="a long passphrase 42")
        [record] = records(caplog, "anonauth.upgrade")
        assert fields(record) == {"event": "upgraded", "guest_id": guest.pk, "method": "password"}

    def test_a_direct_link(
        self, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
    ) -> None:
        guest, member = make_guest(days_ago=0), make_registered_user("owner@example.com")
        guest_id = guest.pk
        Cart.objects.create(owner=guest)
        with django_capture_on_commit_callbacks(execute=True):
            link.link_guest(guest, member)
        [record] = records(caplog, "anonauth.link")
        assert fields(record) == {
            "event": "linked",
            "guest_id": guest_id,
            "method": "direct",
            "moved": {"shop.Cart.owner": 1},
            "dropped": {},
            "guest_deleted": True,
        }
        assert "1 rows moved, 0 dropped" in record.getMessage()

    def test_a_conflict_is_counted_as_dropped(
        self, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
    ) -> None:
        guest, member = make_guest(days_ago=0), make_registered_user("owner@example.com")
        Profile.objects.create(user=guest, nickname="g")
        Profile.objects.create(user=member, nickname="m")
        with django_capture_on_commit_callbacks(execute=True):
            link.link_guest(guest, member)
        [record] = records(caplog, "anonauth.link")
        assert (record.moved, record.dropped) == ({}, {"linkapp.Profile.user": 1})

    def test_the_link_endpoint_and_a_login(
        self, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
    ) -> None:
        owner = make_registered_user("owner@example.com", password="s3cret-pass")
        with django_capture_on_commit_callbacks(execute=True):
            client = guest_client(Client(enforce_csrf_checks=True))
            body = {"login": "owner@example.com", "password": "s3cret-pass"}
            response = client.post(LINK, body, content_type="application/json", **csrf(client))
            assert response.status_code == 200, response.content
            login = {"username": owner.get_username(), "password": "s3cret-pass"}
            assert guest_client().post("/accounts/login/", login).status_code == 302
        methods = [record.method for record in records(caplog, "anonauth.link")]
        assert methods == ["credentials", "login"]


class TestPurge:
    def test_every_batch_and_the_run(
        self, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
    ) -> None:
        for _ in range(3):
            make_guest()
        with django_capture_on_commit_callbacks(execute=True):
            result = purge_guests(batch_size=2)
        *batches, run = records(caplog, "anonauth.purge")
        assert [fields(b)["event"] for b in batches] == ["purge_batch"] * 2
        assert [fields(b)["purged"] for b in batches] == [2, 1]
        assert [fields(b)["examined"] for b in batches] == [2, 1]
        assert all(b.seconds >= 0 and b.shard is None for b in batches)
        assert fields(run) == {
            "event": "purge_run",
            "shard": None,
            "seconds": result.seconds,
            "batches": 2,
            "sessions": 0,
            "examined": 3,
            "purged": 3,
            "spared": 0,
            "blocked": 0,
            "dry_run": False,
        }

    def test_a_shard_names_its_bounds(self) -> None:
        assert observe._shard(Shard(3, 9)) == [3, 9]
        assert observe._shard(Shard()) is None

    def test_a_dry_run(self, caplog: pytest.LogCaptureFixture) -> None:
        make_guest()
        purge_guests(dry_run=True)
        run = records(caplog, "anonauth.purge")[-1]
        assert "dry run" in run.getMessage()
        assert (run.dry_run, run.purged) == (True, 1)

    def test_a_spread_run_logs_its_sum(self, caplog: pytest.LogCaptureFixture) -> None:
        shard = {
            "status": "done",
            "shard": [None, 5],
            **PurgeResult(purged=2, examined=2).summary(),
        }
        purge_sum([shard, {**shard, "shard": [5, None]}], 0.0)
        [record] = records(caplog, "anonauth.purge")
        assert fields(record)["event"] == "purge_spread"
        assert (record.shards, record.purged, record.status) == (2, 4, "done")


class TestTransfer:
    def test_issued_redeemed_and_refused(self, caplog: pytest.LogCaptureFixture) -> None:
        first = guest_client(Client(enforce_csrf_checks=True))
        guest_id = int(first.session[SESSION_KEY])
        code = first.post(TRANSFER, **csrf(first)).json()["code"]
        second = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
        assert (
            second.post(REDEEM, {"code": code}, content_type="application/json").status_code == 200
        )
        assert (
            Client().post(REDEEM, {"code": code}, content_type="application/json").status_code
            == 400
        )
        events = [(r.event, r.guest_id) for r in records(caplog, "anonauth.transfer")]
        assert events == [
            ("transfer_issued", guest_id),
            ("transfer_redeemed", guest_id),
            ("transfer_refused", None),
        ]
        refused = records(caplog, "anonauth.transfer")[-1]
        assert (refused.levelno, refused.code, refused.action) == (
            logging.WARNING,
            "invalid_transfer_code",
            "redeem",
        )

    @override_settings(ANONAUTH_TRANSFER_RATE_LIMIT="1/h")
    def test_a_guest_over_the_rate_limit(self, caplog: pytest.LogCaptureFixture) -> None:
        client = guest_client(Client(enforce_csrf_checks=True))
        assert client.post(TRANSFER, **csrf(client)).status_code == 201
        assert client.post(TRANSFER, **csrf(client)).status_code == 429
        refused = records(caplog, "anonauth.transfer")[-1]
        assert (refused.code, refused.action, refused.levelno) == (
            "rate_limited",
            "issue",
            logging.INFO,
        )
        assert refused.guest_id == int(client.session[SESSION_KEY])

    def test_a_registered_user_is_not_named(self, caplog: pytest.LogCaptureFixture) -> None:
        request = RequestFactory().post("/")
        request.user = make_registered_user("owner@example.com")
        with pytest.raises(NotGuest):
            transfer.issue(request)
        [record] = records(caplog, "anonauth.transfer")
        assert (record.code, record.guest_id) == ("not_guest", None)

    def test_the_page_refusal_is_a_gate_too(self, caplog: pytest.LogCaptureFixture) -> None:
        response = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).post(ENTER, {"code": "ABCD-EFGH"})
        assert response.status_code == 400
        [gate] = records(caplog, "anonauth.gates")
        assert (gate.where, gate.code, gate.status) == ("page", "invalid_transfer_code", 400)


class TestNoPersonalData:
    EMAIL = "ada.lovelace@example.com"
    ADDRESS = "203.0.113.77"
    AGENT = "Mozilla/5.0 (X11; Linux x86_64; PiiCanary/7) Firefox/140.0"
    BOT = "PiiCanaryBot/1.0"

    @override_settings(ANONAUTH_LIVE_GUEST_CAP=50, ANONAUTH_METRICS=True)
    def test_a_whole_scenario_logs_none(
        self, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="anonauth")
        secrets: list[str] = [self.EMAIL, self.ADDRESS, self.AGENT, self.BOT, "ada.lovelace"]
        owner = make_registered_user("owner.person@example.com", password="s3cret-pass")
        secrets += ["owner.person@example.com", owner.get_username(), "s3cret-pass"]
        with django_capture_on_commit_callbacks(execute=True):
            # refused: a crawler, then a cookieless client, from the known address
            Client(HTTP_USER_AGENT=self.BOT, REMOTE_ADDR=self.ADDRESS).get(LAZY)
            Client(HTTP_USER_AGENT=self.AGENT, REMOTE_ADDR=self.ADDRESS).get(LAZY)
            # created lazily, then upgraded through the API
            shopper = browser(HTTP_USER_AGENT=self.AGENT, REMOTE_ADDR=self.ADDRESS)
            shopper.cookies[settings.CSRF_COOKIE_NAME] = "c" * 32
            shopper.get(LAZY)
            guest = signed_in_guest(shopper)
            secrets += [guest.get_username(), shopper.cookies["sessionid"].value, "c" * 32]
            body = {"email": self.EMAIL, "password": "a long passphrase 42"}
            upgraded = shopper.post(UPGRADE, body, content_type="application/json", **csrf(shopper))
            assert upgraded.status_code == 200, upgraded.content
            taken = shopper.post(UPGRADE, body, content_type="application/json", **csrf(shopper))
            assert taken.status_code == 403  # no longer a guest: refused, logged
            # linked through the endpoint, with a wrong password first
            linker = guest_client(Client(enforce_csrf_checks=True, REMOTE_ADDR=self.ADDRESS))
            secrets.append(linker.cookies["sessionid"].value)
            wrong = {"login": "owner.person@example.com", "password": "wrong"}
            right = {"login": "owner.person@example.com", "password": "s3cret-pass"}
            for attempt in (wrong, right):
                linker.post(LINK, attempt, content_type="application/json", **csrf(linker))
            # a transfer code issued, redeemed, and tried again
            first = guest_client(Client(enforce_csrf_checks=True, REMOTE_ADDR=self.ADDRESS))
            code = first.post(TRANSFER, **csrf(first)).json()["code"]
            secrets += [code, code.replace("-", ""), first.cookies["sessionid"].value]
            second = Client(HTTP_USER_AGENT=self.AGENT, REMOTE_ADDR=self.ADDRESS)
            for _ in range(2):
                second.post(REDEEM, {"code": code}, content_type="application/json")
            # purged
            make_guest()
            purge_guests()
        texts = [
            text
            for record in caplog.records
            if record.name.startswith("anonauth")
            for text in (record.getMessage(), repr(fields(record)))
        ]
        events = {getattr(record, "event", None) for record in caplog.records}
        assert {"refused", "upgraded", "linked", "transfer_issued", "transfer_redeemed"} <= events
        assert {"transfer_refused", "purge_batch", "purge_run"} <= events
        leaked = [(secret, text) for secret in secrets for text in texts if secret in text]
        assert leaked == []
