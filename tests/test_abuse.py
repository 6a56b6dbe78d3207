"""Abuse, faults and bad input: no takeover, no 500, nothing lost.

Each class names the defect of the issue "Abuse, faults and bad input" it pins down.
"""

from __future__ import annotations

import bz2
import json
import zlib
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from anonauth import signals
from anonauth.guests import create_guest, is_guest, probe_value
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, connected, guest_client, make_registered_user
from tests.linkapp.models import Note

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.pathsapp.urls")]

SIGN_IN = "/auth/anonymous/sign-in/"
SESSION = "/auth/anonymous/session/"
UPGRADE = "/auth/anonymous/upgrade/"
LINK = "/auth/anonymous/link/"
PASSWORD = "correct-horse-42"
DOWN_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "down": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
    },
}


def visitor(address: str, **cookies: str) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, REMOTE_ADDR=address)
    for name, value in cookies.items():
        client.cookies[name] = value
    return client


class TestCookieTossing:
    """1. The race-claim key came from the first cookie found (the session key, the
    unsigned probe cookie, the CSRF cookie): anyone who can plant a cookie for the domain
    created a guest with it, and every victim arriving with that cookie within the claim
    window was signed in as the attacker's guest."""

    @pytest.mark.parametrize("cookie", ["csrftoken", "anonauth"])
    def test_a_planted_cookie_claims_nothing(self, cookie: str) -> None:
        attacker = visitor("203.0.113.9", **{cookie: "p" * 32})
        victim = visitor("198.51.100.7", **{cookie: "p" * 32})
        attackers = attacker.get("/guest-fn/").json()["id"]
        victims = victim.get("/guest-fn/").json()["id"]
        assert victims is not None
        assert victims != attackers
        assert Guest.objects.count() == 2

    def test_a_validly_signed_probe_from_elsewhere_claims_nothing(self) -> None:
        cookieless = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, REMOTE_ADDR="203.0.113.9")
        probe = cookieless.get("/guest-fn/").cookies["anonauth"].value
        attacker = visitor("203.0.113.9", anonauth=probe)
        victim = visitor("198.51.100.7", anonauth=probe)
        assert attacker.get("/guest-fn/").json()["id"] != victim.get("/guest-fn/").json()["id"]

    def test_the_probe_cookie_is_signed(self) -> None:
        probe = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).get("/guest-fn/").cookies["anonauth"]
        request = RequestFactory().get("/")
        request.COOKIES["anonauth"] = probe.value
        assert probe_value(request)
        request.COOKIES["anonauth"] = probe.value[:-2] + "xx"  # tampered
        assert probe_value(request) is None

    @override_settings(ANONAUTH_PROBE_COOKIE_NAME="__Host-anonauth", SESSION_COOKIE_SECURE=True)
    def test_the_probe_cookie_name_is_configurable(self) -> None:
        response = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).get("/guest-fn/", secure=True)
        probe = response.cookies["__Host-anonauth"]
        assert probe["secure"]
        assert probe["path"] == "/"
        assert not probe["domain"]
        client = visitor("198.51.100.7", **{"__Host-anonauth": probe.value})
        assert client.get("/guest-fn/", secure=True).json()["is_guest"]


class TestUpgradeCost:
    """2. ``upgrade/`` was unlimited and ran the password hasher (Argon2: ~100 MiB,
    120 ms) before checking the email, so one free guest could tie up the server and
    probe registered addresses without bound."""

    def test_an_address_in_use_is_refused_before_hashing(self) -> None:
        make_registered_user("taken@example.com")
        client = guest_client()
        with mock.patch("anonauth.upgrade.make_password", wraps=None) as hasher:
            response = client.post(
                UPGRADE,
                {"email": "taken@example.com", "password": PASSWORD},
                content_type="application/json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
            )
        assert response.status_code == 409
        assert response.json()["code"] == "email_in_use"
        hasher.assert_not_called()

    @override_settings(ANONAUTH_UPGRADE_RATE_LIMIT="3/h")
    def test_upgrade_is_rate_limited_per_guest(self) -> None:
        make_registered_user("taken@example.com")
        client = guest_client()
        statuses = [
            client.post(
                UPGRADE,
                {"email": "taken@example.com", "password": PASSWORD},
                content_type="application/json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [409, 409, 409, 429]

    @override_settings(ANONAUTH_UPGRADE_RATE_LIMIT="3/h", ANONAUTH_RATE_LIMIT=None)
    def test_upgrade_is_rate_limited_per_address(self) -> None:
        make_registered_user("taken@example.com")
        statuses = []
        for _ in range(4):
            client = guest_client()
            statuses.append(
                client.post(
                    UPGRADE,
                    {"email": "taken@example.com", "password": PASSWORD},
                    content_type="application/json",
                    HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
                ).status_code
            )
        assert statuses == [409, 409, 409, 429]


class TestGuestsWithPasswords:
    """3. A guest that got a usable password by another path (allauth's password set
    page, ``set_password`` in project code) stayed flagged a guest: it could log in by
    username, and logout or the purge later deleted it with its data."""

    def test_a_usable_password_ends_guest_status(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        guest = create_guest()
        recorder = mock.Mock()
        with (
            connected(signals.guest_upgraded, recorder),
            django_capture_on_commit_callbacks(execute=True),
        ):
            guest.set_password(PASSWORD)
            guest.save()
        assert not Guest.objects.filter(user_id=guest.pk).exists()
        assert not is_guest(get_user_model().objects.get(pk=guest.pk))
        assert recorder.call_args.kwargs["method"] == "password_set"

    def test_saving_a_guest_otherwise_keeps_it(self) -> None:
        guest = create_guest()
        guest.first_name = "Ada"
        guest.save()
        assert Guest.objects.filter(user_id=guest.pk).exists()


class TestCacheOutage:
    """4. With the rate-limit cache down, every guest-allowed page answered 500 to new
    visitors, and ``sign-in/`` and ``link/`` answered 500 HTML."""

    @override_settings(CACHES=DOWN_CACHE, RATELIMIT_USE_CACHE="down")
    def test_the_lazy_path_stays_anonymous(self, browser: Client) -> None:
        response = browser.get("/guest-fn/")
        assert response.status_code == 200
        assert response.json() == {"id": None, "is_guest": False, "refusal": "unavailable"}
        assert not Guest.objects.exists()

    @override_settings(CACHES=DOWN_CACHE, RATELIMIT_USE_CACHE="down")
    def test_sign_in_answers_503_json(self) -> None:
        response = Client(HTTP_USER_AGENT="okhttp/4.12").post(SIGN_IN)
        assert response.status_code == 503
        assert response.json()["code"] == "unavailable"

    def test_link_answers_503_json(self) -> None:
        member = make_registered_user()
        client = guest_client()
        with override_settings(CACHES=DOWN_CACHE, RATELIMIT_USE_CACHE="down"):
            response = client.post(
                LINK,
                {"login": member.email, "password": PASSWORD},
                content_type="application/json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
            )
        assert response.status_code == 503
        assert response.json()["code"] == "unavailable"


class TestTouchBeforeTheView:
    """9. ``last_seen`` was written after the view, so a purge running during a returning
    stale guest's request could delete the guest and the rows its view had just written."""

    def age(self, browser: Client) -> None:
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=40))
        session = browser.session
        session["_anonauth_seen"] = 0
        session.save()

    def test_a_returning_stale_guest_is_touched_before_its_view(self, browser: Client) -> None:
        browser.get("/guest-fn/")
        self.age(browser)
        seen = browser.get("/paths/last-seen/").json()["last_seen"]  # read by the view
        assert timezone.now() - timezone.datetime.fromisoformat(seen) < timedelta(minutes=1)


class TestBadBodies:
    """11. JSON nested 100,000 levels deep was a 500 (``RecursionError``); a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` got an HTML 400."""

    def test_deeply_nested_json(self) -> None:
        client = guest_client()
        body = "[" * 100_000 + "]" * 100_000
        response = client.post(
            UPGRADE,
            body,
            content_type="application/json",
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )
        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"

    @pytest.mark.parametrize(
        "content_type", ["application/json", "application/x-www-form-urlencoded"]
    )
    @pytest.mark.parametrize("charset", ["bz2_codec", "zlib_codec"])
    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
    def test_a_charset_that_is_no_text_encoding(self, content_type: str, charset: str) -> None:
        """A 100-byte bz2 body named ``charset=bz2_codec`` decompressed to 400 KB past
        ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a bomb, on the DRF releases before 3.18), and
        a form one was a 500 (``LookupError``): any charset but a text one is a 400."""
        client = guest_client()
        password = "x" * 400_000
        if content_type == "application/json":
            raw = json.dumps({"email": "a@example.com", "password": password}).encode()
        else:
            raw = f"email=a%40example.com&password={password}".encode()
        body = bz2.compress(raw) if charset == "bz2_codec" else zlib.compress(raw)
        response = client.generic(
            "POST",
            UPGRADE,
            body,
            content_type=f"{content_type}; charset={charset}",
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "parse_error"
        assert is_guest(get_user_model().objects.get())

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
    def test_a_body_too_large(self) -> None:
        client = guest_client()
        response = client.post(
            UPGRADE,
            json.dumps({"email": "a@example.com", "password": "x" * 4000}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )
        assert response.status_code == 413
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "request_too_large"

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            (UPGRADE, {"email": "typed@example.com", "password": 84_216_973_501}),
            (UPGRADE, {"email": ["typed@example.com"], "password": PASSWORD}),
            (LINK, {"login": 1234567, "password": PASSWORD}),
            (LINK, {"login": "someone", "password": 3.5}),
            ("/auth/anonymous/transfer/redeem/", {"code": 12345678}),
        ],
    )
    def test_a_number_or_list_where_a_string_belongs(self, path: str, body: Any) -> None:
        """The schema says ``string``; DRF's ``CharField`` took numbers as their text, so
        ``"password": 84216973501`` upgraded the guest (200), and schemathesis' negative
        run got a 200 or a 409 ``email_in_use`` now and then."""
        client = Client() if "redeem" in path else guest_client()
        csrf = client.cookies.get("csrftoken")
        headers = {} if csrf is None else {"HTTP_X_CSRFTOKEN": csrf.value}
        guests = Guest.objects.count()
        response = client.post(path, json.dumps(body), content_type="application/json", **headers)
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "invalid"
        assert Guest.objects.count() == guests  # not upgraded, not linked


class TestCrossSiteSignIn:
    """13. Cookieless ``sign-in/`` had no origin check and handed the session token to
    browsers: cross-site POSTs got 201 and a token."""

    def test_a_cross_site_browser_post_is_refused(self) -> None:
        response = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).post(
            SIGN_IN, HTTP_ORIGIN="https://evil.example", HTTP_SEC_FETCH_SITE="cross-site"
        )
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
        assert not Guest.objects.exists()

    def test_a_same_origin_browser_gets_no_token(self) -> None:
        response = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).post(
            SIGN_IN, HTTP_ORIGIN="http://testserver", HTTP_SEC_FETCH_SITE="same-origin"
        )
        assert response.status_code == 201, response.content
        assert response.json()["session_token"] is None

    def test_an_app_client_gets_its_token(self) -> None:
        response = Client(HTTP_USER_AGENT="okhttp/4.12").post(SIGN_IN)
        assert response.status_code == 201
        assert response.json()["session_token"]


class TestUnicodeEmails:
    """14. Email uniqueness was bypassed by Unicode: ``bücher.de`` vs
    ``xn--bcher-kva.de``, fullwidth letters, the Kelvin sign."""

    @pytest.mark.parametrize(
        ("taken", "claimed"),
        [
            ("ada@bücher.de", "ada@xn--bcher-kva.de"),
            ("ada@xn--bcher-kva.de", "ada@BÜCHER.de"),
            ("ada@example.com", "\uff41\uff44\uff41@example.com"),  # fullwidth
            ("kelvin@example.com", "\u212aelvin@example.com"),  # the Kelvin sign
        ],
    )
    def test_equivalent_addresses_are_in_use(self, taken: str, claimed: str) -> None:
        from anonauth.exceptions import EmailInUse
        from anonauth.upgrade import upgrade_guest

        make_registered_user(taken)
        guest = create_guest()
        with pytest.raises(EmailInUse):
            upgrade_guest(guest, email=claimed, password=PASSWORD)
        assert is_guest(guest)


class TestLinkErrors:
    """16. A raising ``guest_linking`` receiver made ``link/`` answer 500 HTML (it must be
    a JSON error with the guest kept); cookie requests that are not JSON got 415 instead
    of the CSRF 403."""

    def test_a_raising_receiver_is_a_json_error_and_keeps_the_guest(self) -> None:
        member = make_registered_user()
        client = guest_client()
        guest_id = client.get(SESSION).json()["user"]["id"]
        Note.objects.create(author_id=guest_id, text="mine")

        def broken(**kwargs: Any) -> None:
            raise RuntimeError("the project's receiver failed")

        with connected(signals.guest_linking, broken):
            response = client.post(
                LINK,
                {"login": member.email, "password": PASSWORD},
                content_type="application/json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
            )
        assert response.status_code == 409
        assert response.json()["code"] == "link_failed"
        assert Note.objects.get().author_id == guest_id
        assert client.get(SESSION).json()["user"]["id"] == guest_id

    def test_a_cross_site_form_post_is_a_csrf_403(self) -> None:
        client = guest_client(Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, enforce_csrf_checks=True))
        response = client.post(UPGRADE, "email=a@example.com", content_type="text/plain")
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"


class TestSensitiveData:
    """6. Plaintext passwords in error reports for ``upgrade/`` and ``link/``: the form
    body in the text report, the JSON body in frame locals."""

    @pytest.mark.parametrize("url", [UPGRADE, LINK])
    def test_the_views_mark_the_password_sensitive(self, url: str) -> None:
        from django.core.signals import got_request_exception

        client = guest_client()
        client.raise_request_exception = False
        requests: list[Any] = []
        failing = (
            "anonauth.views.upgrade.upgrade_guest"
            if url == UPGRADE
            else ("anonauth.views.link.link_with_credentials")
        )
        with (
            connected(
                got_request_exception, lambda sender, request, **kw: requests.append(request)
            ),
            mock.patch(failing, side_effect=RuntimeError("boom")),
        ):
            response = client.post(
                url,
                {"email": "a@example.com", "login": "a@example.com", "password": "s3cret-Pw!"},
                content_type="application/json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
            )
        assert response.status_code == 500
        assert "password" in requests[0].sensitive_post_parameters

    def test_core_functions_keep_the_password_out_of_frame_locals(self) -> None:
        import sys

        from django.views.debug import ExceptionReporter

        from anonauth.upgrade import upgrade_guest

        guest = create_guest()
        try:
            upgrade_guest(guest, email="not an address", password="s3cret-Pw!")
        except Exception:
            frames = ExceptionReporter(None, *sys.exc_info()).get_traceback_frames()
        ours = [frame for frame in frames if "/anonauth/" in frame["filename"]]
        assert ours
        assert all("s3cret-Pw!" not in repr(frame["vars"]) for frame in ours)


class TestProxies:
    """8. With the README's ``RATELIMIT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"``, spoofed
    addresses bypassed the limit (10 spoofed addresses, 10 guests under ``3/m``), and a
    request without the header or with an ordinary chain was a 500."""

    @pytest.mark.parametrize(
        "settings_",
        [{"ANONAUTH_TRUSTED_PROXIES": 1}, {"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR"}],
    )
    @override_settings(ANONAUTH_RATE_LIMIT="3/h")
    def test_spoofed_addresses_share_the_real_clients_limit(
        self, settings_: dict[str, Any]
    ) -> None:
        created = 0
        for spoof in range(10):
            client = Client(
                HTTP_USER_AGENT="okhttp/4.12",
                REMOTE_ADDR="10.0.0.2",  # the proxy
                HTTP_X_FORWARDED_FOR=f"192.0.2.{spoof}, 198.51.100.7",
            )
            with override_settings(**settings_):
                created += client.post(SIGN_IN).status_code == 201
        assert created == 3

    @pytest.mark.parametrize("forwarded", [None, "198.51.100.7, 203.0.113.5", "garbage", ""])
    @override_settings(RATELIMIT_IP_META_KEY="HTTP_X_FORWARDED_FOR")
    def test_a_raw_forwarded_for_key_never_500s(self, forwarded: str | None) -> None:
        extra = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
        response = Client(HTTP_USER_AGENT="okhttp/4.12", **extra).post(SIGN_IN)
        assert response.status_code == 201
        browser = visitor("198.51.100.9", seen="1")
        assert browser.get("/guest-fn/", **extra).status_code == 200

    @pytest.mark.parametrize(
        ("forwarded", "proxies", "expected"),
        [
            ("198.51.100.7", 1, "198.51.100.7"),
            ("192.0.2.1, 198.51.100.7", 1, "198.51.100.7"),
            ("192.0.2.1, 198.51.100.7, 10.0.0.1", 2, "198.51.100.7"),
            ("not-an-address", 1, "10.0.0.2"),
            (None, 1, "10.0.0.2"),
            ("198.51.100.7", 0, "10.0.0.2"),
        ],
    )
    def test_the_client_address(self, forwarded: str | None, proxies: int, expected: str) -> None:
        from anonauth.guests import client_address

        meta = {"REMOTE_ADDR": "10.0.0.2"}
        if forwarded is not None:
            meta["HTTP_X_FORWARDED_FOR"] = forwarded
        request = RequestFactory().get("/", **meta)
        with override_settings(ANONAUTH_TRUSTED_PROXIES=proxies):
            assert client_address(request) == expected

    @pytest.mark.parametrize(
        ("remote", "forwarded", "proxies", "expected"),
        [
            ("::ffff:198.51.100.7", None, 0, "198.51.100.7"),  # a dual-stack listener
            ("10.0.0.2", "::ffff:198.51.100.7", 1, "198.51.100.7"),  # a proxy that maps
            ("2001:db8::7", None, 0, "2001:db8::7"),
        ],
    )
    def test_an_ipv4_mapped_address_is_its_ipv4_address(
        self, remote: str, forwarded: str | None, proxies: int, expected: str
    ) -> None:
        from anonauth.guests import client_address, client_network

        meta = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            meta["HTTP_X_FORWARDED_FOR"] = forwarded
        request = RequestFactory().get("/", **meta)
        with override_settings(ANONAUTH_TRUSTED_PROXIES=proxies):
            assert client_address(request) == expected
            if expected == "198.51.100.7":  # not the ::/64 that every IPv4 client shares
                assert client_network(request) == expected

    @override_settings(ANONAUTH_RATE_LIMIT="1/m")
    def test_ipv4_clients_of_a_dual_stack_server_are_counted_apart(self) -> None:
        statuses = [
            Client(REMOTE_ADDR=f"::ffff:198.51.{n}.7", HTTP_USER_AGENT="okhttp/4.12")
            .post(SIGN_IN)
            .status_code
            for n in range(3)
        ]
        assert statuses == [201, 201, 201]


class TestNothingHalfCreated:
    """16. A failed session insert left an orphan guest (user and ``Guest`` rows with no
    session), contrary to the README."""

    def test_a_failing_session_insert_leaves_no_guest(self, browser: Client) -> None:
        from django.contrib.sessions.models import Session
        from django.db import DatabaseError
        from django.db.models.signals import pre_save

        def failing_insert(sender: Any, **kwargs: Any) -> None:
            raise DatabaseError("the session table is unavailable")

        # The creation INSERTs the session row itself (no SessionStore.save).
        with connected(pre_save, failing_insert, sender=Session):
            response = browser.get("/guest-fn/")
        assert response.json() == {"id": None, "is_guest": False, "refusal": "unavailable"}
        assert not get_user_model().objects.exists()
        assert not Guest.objects.exists()
