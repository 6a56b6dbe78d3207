from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone

from anonauth import sessions
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT

pytestmark = pytest.mark.django_db

AGENT = {"user-agent": BROWSER_USER_AGENT}
GUEST_VIEWS = [
    "/guest-fn/",
    "/guest-cbv/",
    "/guest-drf/",
    "/guest-api-view/",
    "/ensure/",
    "/ensure-drf/",  # ensure_guest() given DRF's Request
    "/ensure-api-view/",
]


@pytest.mark.parametrize("url", GUEST_VIEWS)
def test_marked_views_create_a_guest(browser: Client, url: str) -> None:
    body = browser.get(url).json()
    assert body["is_guest"]
    assert Guest.objects.get().user_id == body["id"]
    # the next request is the same guest
    assert browser.get(url).json()["id"] == body["id"]
    assert Guest.objects.count() == 1


@pytest.mark.parametrize("url", ["/guest-cbv/", "/guest-drf/", "/guest-api-view/"])
def test_post_to_marked_views(browser: Client, url: str) -> None:
    assert browser.post(url).json()["is_guest"]


def test_ordinary_requests_run_no_query_and_create_nobody(
    browser: Client, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        assert browser.get("/plain/").status_code == 200
    assert not Guest.objects.exists()


@pytest.mark.parametrize(
    "agent", ["", "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5"]
)
def test_crawlers_cost_nothing(agent: str, django_assert_num_queries: Any) -> None:
    client = Client(HTTP_USER_AGENT=agent)
    client.cookies["seen"] = "1"
    with django_assert_num_queries(0):
        body = client.get("/guest-fn/").json()
    assert body == {"id": None, "is_guest": False, "refusal": "user_agent_refused"}


def test_head_requests_get_no_guest(browser: Client) -> None:
    assert browser.head("/guest-fn/").status_code == 200
    assert not Guest.objects.exists()


def test_a_cookieless_client_gets_a_probe_cookie_then_a_guest(
    django_assert_num_queries: Any,
) -> None:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
    with django_assert_num_queries(0):
        response = client.get("/guest-fn/")
    assert response.json()["refusal"] == "no_cookie"
    probe = response.cookies["anonauth"]
    assert len(probe.value) >= 16
    assert probe["httponly"]
    assert client.get("/guest-fn/").json()["is_guest"]


def test_probe_cookies_are_random(db: None) -> None:
    values = {
        Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).get("/guest-fn/").cookies["anonauth"].value
        for _ in range(3)
    }
    assert len(values) == 3


def test_registered_users_are_left_alone(browser: Client, member: Any) -> None:
    browser.force_login(member)
    assert browser.get("/guest-fn/").json() == {"id": member.pk, "is_guest": False, "refusal": None}
    assert not Guest.objects.exists()


def test_guest_session_lifetime(browser: Client) -> None:
    browser.get("/guest-fn/")
    session = SessionStore(browser.cookies["sessionid"].value)
    assert session.get_expiry_age() == 30 * 24 * 3600


@override_settings(ANONAUTH_SESSION_AGE=3600)
def test_guest_session_lifetime_setting(browser: Client) -> None:
    response = browser.get("/guest-fn/")
    assert response.cookies["sessionid"]["max-age"] == 3600


class TestTouch:
    def age(self, browser: Client, *, seen_ago: int) -> None:
        session = SessionStore(browser.cookies["sessionid"].value)
        session[sessions.SEEN_SESSION_KEY] = int(time.time()) - seen_ago
        session.save()
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=2))

    def test_a_guest_request_records_activity_once_per_interval(self, browser: Client) -> None:
        browser.get("/guest-fn/")
        self.age(browser, seen_ago=7200)
        browser.get("/session-touch/")
        first = Guest.objects.get().last_seen
        assert timezone.now() - first < timedelta(minutes=1)
        browser.get("/session-touch/")
        assert Guest.objects.get().last_seen == first

    def test_the_touch_comes_before_the_view_even_if_it_never_reads_the_session(
        self, browser: Client
    ) -> None:
        """A returning guest is touched before its view (a purge cannot take it while the
        view writes), so a view that never reads the session still records activity."""
        browser.get("/guest-fn/")
        self.age(browser, seen_ago=7200)
        browser.get("/plain/")
        assert timezone.now() - Guest.objects.get().last_seen < timedelta(minutes=1)

    def test_requests_without_a_session_run_no_query(self, django_assert_num_queries: Any) -> None:
        with django_assert_num_queries(0):
            Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).get("/plain/")

    def test_existing_guest_costs_what_a_registered_user_costs(
        self, browser: Client, member: Any, django_assert_num_queries: Any
    ) -> None:
        guest_id = browser.get("/guest-lean/").content
        with django_assert_num_queries(2):  # the session and the user
            assert browser.get("/guest-lean/").content == guest_id
        registered = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
        registered.force_login(member)
        with django_assert_num_queries(2):
            assert registered.get("/guest-lean/").content == str(member.pk).encode()


class TestSessionTokenHeader:
    def sign_in_app(self) -> tuple[Client, str]:
        client = Client(HTTP_USER_AGENT="okhttp/4.12", enforce_csrf_checks=True)
        response = client.post("/auth/anonymous/sign-in/")
        assert response.status_code == 201
        token = response.json()["session_token"]
        assert token
        return Client(HTTP_USER_AGENT="okhttp/4.12", enforce_csrf_checks=True), token

    def test_the_header_authenticates_anywhere(self) -> None:
        client, token = self.sign_in_app()
        body = client.get("/guest-fn/", HTTP_X_SESSION_TOKEN=token).json()
        assert body["is_guest"]
        assert SessionStore(token)[SESSION_KEY] == str(body["id"])

    def test_no_csrf_for_token_clients(self) -> None:
        client, token = self.sign_in_app()
        assert client.post("/guest-cbv/", HTTP_X_SESSION_TOKEN=token).json()["is_guest"]

    def test_an_unknown_token_is_anonymous(self) -> None:
        client = Client(HTTP_USER_AGENT="okhttp/4.12")
        response = client.get("/auth/anonymous/session/", HTTP_X_SESSION_TOKEN="nonsense")
        assert response.status_code == 401


class TestAsync:
    """The middleware on an async stack (ASGI handler), run through ``async_to_sync``."""

    def test_async_stack_creates_a_guest(self) -> None:
        async_to_sync(self.creates_a_guest)()

    def test_async_stack_touches(self) -> None:
        client = AsyncClient()
        client.cookies["seen"] = "1"
        async_to_sync(client.get)("/async-guest/", headers=AGENT)
        TestTouch().age(client, seen_ago=7200)  # type: ignore[arg-type]
        async_to_sync(client.get)("/async-guest/", headers=AGENT)
        assert timezone.now() - Guest.objects.get().last_seen < timedelta(minutes=1)

    def test_async_ordinary_request(self) -> None:
        async_to_sync(self.ordinary_request)()

    async def creates_a_guest(self) -> None:
        client = AsyncClient()
        client.cookies["seen"] = "1"
        body = (await client.get("/async-guest/", headers=AGENT)).json()
        assert body["is_guest"]
        again = (await client.get("/async-guest/", headers=AGENT)).json()
        assert again["id"] == body["id"]

    async def ordinary_request(self) -> None:
        client = AsyncClient()
        assert (await client.get("/plain/", headers=AGENT)).status_code == 200
        assert not await Guest.objects.aexists()
