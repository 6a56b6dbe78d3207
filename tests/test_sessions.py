"""Guest sessions end in a login: ``login()`` and ``alogin()`` link the guest they replace.

Tested through behaviour only: a guest browses, then a view (sync or async) signs it into
an existing account; the guest's data moves into the account and the guest row is gone.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.test import AsyncClient, Client, RequestFactory

from anonauth import sessions, signals
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, connected, guest_client, make_registered_user
from tests.linkapp.models import Note

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-42"  # make_registered_user's, the ``member`` fixture's
# Per request: AsyncClient(headers=...) defaults don't reach the ASGI scope as headers.
BROWSER = {"user-agent": BROWSER_USER_AGENT}


def credentials(account: Any, password: str = PASSWORD) -> dict[str, str]:
    return {"username": account.get_username(), "password": password}


def exists(user_id: Any) -> bool:
    return get_user_model()._base_manager.filter(pk=user_id).exists()


def signed_in_id(client: Client | AsyncClient) -> Any:
    """Who the client's session cookie signs in, asked of the API."""
    viewer = Client()
    viewer.cookies = client.cookies
    response = viewer.get("/auth/anonymous/session/")
    return response.json()["user"]["id"] if response.status_code == 200 else None


def async_guest_by_sign_in() -> tuple[AsyncClient, int]:
    """An async browser whose guest came from the sign-in API."""
    browser = guest_client()
    client = AsyncClient()
    client.cookies = browser.cookies
    return client, int(browser.session[SESSION_KEY])


def async_guest_by_browsing() -> tuple[AsyncClient, int]:
    """An async browser whose guest an async ``guest_allowed`` view created."""
    client = AsyncClient()
    client.cookies["seen"] = "1"
    body = async_to_sync(client.get)("/async-guest/", headers=BROWSER).json()
    assert body["is_guest"]
    return client, body["id"]


def async_post(client: AsyncClient, path: str, data: dict[str, str]) -> Any:
    return async_to_sync(client.post)(path, data, headers=BROWSER)


class TestAsyncLogin:
    """``alogin()`` in an async view, on the ASGI stack."""

    @pytest.mark.parametrize(
        "make_guest", [async_guest_by_sign_in, async_guest_by_browsing], ids=["api", "lazy"]
    )
    def test_links_the_guest_into_the_account(self, make_guest: Any, member: Any) -> None:
        client, guest_id = make_guest()
        Note.objects.create(author_id=guest_id, text="from the guest")

        response = async_post(client, "/async-login/", credentials(member))

        assert (response.status_code, response.json()) == (200, {"id": member.pk})
        assert Note.objects.get().author == member  # the guest's data moved
        assert not exists(guest_id)  # and the guest row is gone
        assert not Guest.objects.exists()
        assert signed_in_id(client) == member.pk

    def test_a_failed_link_keeps_the_guest_and_the_login(
        self, member: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        client, guest_id = async_guest_by_sign_in()
        Note.objects.create(author_id=guest_id, text="kept")

        def broken(**kwargs: Any) -> None:
            raise RuntimeError("receiver bug")

        with connected(signals.guest_linking, broken):
            response = async_post(client, "/async-login/", credentials(member))

        assert response.status_code == 200
        assert signed_in_id(client) == member.pk
        assert Note.objects.get().author_id == guest_id
        assert Guest.objects.filter(user_id=guest_id).exists()
        assert "receiver bug" in caplog.text

    def test_a_wrong_password_leaves_the_guest_signed_in(self, member: Any) -> None:
        client, guest_id = async_guest_by_sign_in()

        response = async_post(client, "/async-login/", credentials(member, "wrong"))

        assert response.status_code == 400
        assert signed_in_id(client) == guest_id
        assert Guest.objects.filter(user_id=guest_id).exists()

    def test_without_a_guest_nothing_is_linked(self, member: Any) -> None:
        client = AsyncClient()

        response = async_post(client, "/async-login/", credentials(member))

        assert response.status_code == 200
        assert signed_in_id(client) == member.pk
        assert list(get_user_model().objects.values_list("pk", flat=True)) == [member.pk]

    def test_switching_between_registered_accounts_links_nothing(self, member: Any) -> None:
        other = make_registered_user("other@example.com")
        signed_in = Client()
        signed_in.force_login(other)
        client = AsyncClient()
        client.cookies = signed_in.cookies

        response = async_post(client, "/async-login/", credentials(member))

        assert response.status_code == 200
        assert signed_in_id(client) == member.pk
        assert exists(other.pk)


class TestSyncLogin:
    """``login()`` in a sync view, for comparison: the same outcome."""

    def test_links_the_guest_into_the_account(self, member: Any) -> None:
        client = guest_client()
        guest_id = int(client.session[SESSION_KEY])
        Note.objects.create(author_id=guest_id, text="from the guest")

        response = client.post("/sync-login/", credentials(member))

        assert (response.status_code, response.json()) == (200, {"id": member.pk})
        assert Note.objects.get().author == member
        assert not exists(guest_id)
        assert not Guest.objects.exists()
        assert signed_in_id(client) == member.pk

    def test_a_guest_created_by_browsing(self, browser: Client, member: Any) -> None:
        guest_id = browser.get("/guest-fn/").json()["id"]
        Note.objects.create(author_id=guest_id, text="from the guest")

        browser.post("/sync-login/", credentials(member))

        assert Note.objects.get().author == member
        assert not exists(guest_id)
        assert signed_in_id(browser) == member.pk

    def test_without_a_guest_nothing_is_linked(self, member: Any) -> None:
        client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)

        response = client.post("/sync-login/", credentials(member))

        assert response.status_code == 200
        assert signed_in_id(client) == member.pk
        assert list(get_user_model().objects.values_list("pk", flat=True)) == [member.pk]

    def test_switching_between_registered_accounts_links_nothing(self, member: Any) -> None:
        other = make_registered_user("other@example.com")
        client = Client()
        client.force_login(other)

        response = client.post("/sync-login/", credentials(member))

        assert response.status_code == 200
        assert signed_in_id(client) == member.pk
        assert exists(other.pk)


class TestRandomString:
    """Session keys (and guest usernames) come from one draw each, in base 36."""

    def test_the_length_and_the_alphabet(self) -> None:
        keys = {sessions.choose_guest_session_key() for _ in range(200)}
        assert len(keys) == 200
        assert all(len(key) == 32 and set(key) <= set(VALID_KEY_CHARS) for key in keys)
        assert set("".join(keys)) == set(VALID_KEY_CHARS)  # every character turns up

    def test_every_string_is_one_number(self) -> None:
        with mock.patch("anonauth.sessions.secrets.randbelow", return_value=0) as draw:
            assert sessions.random_string(4, "ab") == "aaaa"
        draw.assert_called_once_with(16)  # 2**4 strings, one draw
        with mock.patch("anonauth.sessions.secrets.randbelow", return_value=0b0110):
            assert sessions.random_string(4, "ab") == "abba"  # least significant first


def test_a_new_guest_gets_a_new_csrf_token_and_only_it_is_accepted() -> None:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, enforce_csrf_checks=True)
    old = "a" * CSRF_SECRET_LENGTH
    client.cookies[settings.CSRF_COOKIE_NAME] = old
    response = client.get("/guest-fn/")
    assert response.json()["is_guest"]
    new = response.cookies[settings.CSRF_COOKIE_NAME].value
    assert new != old
    assert len(new) == CSRF_SECRET_LENGTH
    assert set(new) <= set(CSRF_ALLOWED_CHARS)
    body = {"email": "ada@example.com", "password": "a long passphrase 42"}
    refused = client.post("/auth/anonymous/upgrade/", body, HTTP_X_CSRFTOKEN=old)
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")
    accepted = client.post("/auth/anonymous/upgrade/", body, HTTP_X_CSRFTOKEN=new)
    assert accepted.status_code == 200, accepted.content


def test_signing_out_asks_the_middleware_for_a_new_csrf_cookie() -> None:
    request = RequestFactory().get("/")
    SessionMiddleware(lambda request: HttpResponse()).process_request(request)
    sessions.sign_out_keeping_data(request)
    first = request.META["CSRF_COOKIE"]
    sessions.sign_out_keeping_data(request)
    assert request.META["CSRF_COOKIE"] != first
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True
