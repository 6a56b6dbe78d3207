from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT
from tests.testapp.models import Basket

pytestmark = pytest.mark.django_db

SIGN_IN = "/auth/anonymous/sign-in/"
SESSION = "/auth/anonymous/session/"
DELETE = "/auth/anonymous/delete/"


def csrf_browser() -> Client:
    """A browser that must pass Django's CSRF check, holding a CSRF cookie."""
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, enforce_csrf_checks=True)
    client.get("/csrf/")
    assert "csrftoken" in client.cookies
    return client


def post_with_token(client: Client, url: str) -> Any:
    return client.post(url, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


class TestSignIn:
    def test_creates_a_guest(self) -> None:
        client = csrf_browser()
        response = post_with_token(client, SIGN_IN)
        assert response.status_code == 201
        body = response.json()
        assert body["user"]["is_guest"] is True
        assert body["user"]["email"] is None
        assert body["session_token"] is None  # a cookie client keeps its session in the cookie
        assert Guest.objects.get().user_id == body["user"]["id"]

    def test_idempotent_for_a_guest(self) -> None:
        client = csrf_browser()
        first = post_with_token(client, SIGN_IN).json()
        again = post_with_token(client, SIGN_IN)
        assert again.status_code == 200
        assert again.json()["user"]["id"] == first["user"]["id"]
        assert Guest.objects.count() == 1

    def test_registered_user(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        response = client.post(SIGN_IN)
        assert response.status_code == 409
        assert response.json()["code"] == "already_authenticated"
        assert not Guest.objects.exists()

    @override_settings(ANONAUTH_ENABLED=False)
    def test_disabled(self) -> None:
        response = Client().post(SIGN_IN)
        assert (response.status_code, response.json()["code"]) == (403, "disabled")

    @override_settings(ANONAUTH_RATE_LIMIT="2/m")
    def test_rate_limited(self) -> None:
        statuses = [Client().post(SIGN_IN).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        response = Client().post(SIGN_IN)
        assert response.json() == {
            "code": "rate_limited",
            "detail": "Too many guests were created from this address; try again later.",
        }
        assert 1 <= int(response["Retry-After"]) <= 60
        assert Guest.objects.count() == 2

    @override_settings(ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify")
    def test_captcha(self) -> None:
        response = Client().post(SIGN_IN)
        assert (response.status_code, response.json()["code"]) == (400, "captcha_failed")
        assert Client().post(SIGN_IN, HTTP_X_CAPTCHA="ok").status_code == 201

    def test_csrf_enforced_for_cookie_clients(self) -> None:
        client = csrf_browser()
        response = client.post(SIGN_IN)
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
        assert not Guest.objects.exists()

    def test_app_clients_get_a_session_token(self) -> None:
        client = Client(HTTP_USER_AGENT="MyApp/1.0 okhttp/4.12", enforce_csrf_checks=True)
        response = client.post(SIGN_IN)
        assert response.status_code == 201
        token = response.json()["session_token"]
        me = Client().get(SESSION, HTTP_X_SESSION_TOKEN=token)
        assert me.json()["user"]["id"] == response.json()["user"]["id"]
        again = Client().post(SIGN_IN, HTTP_X_SESSION_TOKEN=token)
        assert again.status_code == 200
        assert again.json()["session_token"] == token

    def test_get_is_not_allowed(self) -> None:
        response = Client().get(SIGN_IN)
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"


class TestSession:
    def test_anonymous(self) -> None:
        response = Client().get(SESSION)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_guest(self) -> None:
        client = Client()
        user_id = client.post(SIGN_IN).json()["user"]["id"]
        assert client.get(SESSION).json() == {
            "user": {
                "id": user_id,
                "username": get_user_model().objects.get().get_username(),
                "email": None,
                "is_guest": True,
                "metadata": {},
            }
        }

    def test_registered(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        user = client.get(SESSION).json()["user"]
        assert user == {
            "id": member.pk,
            "username": member.get_username(),
            "email": "member@example.com",
            "is_guest": False,
            "metadata": None,
        }


class TestDelete:
    def test_a_guest_deletes_itself_and_its_data(self) -> None:
        client = csrf_browser()
        user_id = post_with_token(client, SIGN_IN).json()["user"]["id"]
        Basket.objects.create(owner_id=user_id)
        response = post_with_token(client, DELETE)
        assert response.status_code == 204
        assert not get_user_model().objects.filter(pk=user_id).exists()
        assert not Basket.objects.exists()
        assert client.get(SESSION).status_code == 401

    def test_csrf_enforced(self) -> None:
        client = csrf_browser()
        post_with_token(client, SIGN_IN)
        assert client.post(DELETE).status_code == 403
        assert Guest.objects.exists()

    def test_registered_user(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        response = client.post(DELETE)
        assert (response.status_code, response.json()["code"]) == (403, "not_guest")
        assert get_user_model().objects.filter(pk=member.pk).exists()

    def test_anonymous(self) -> None:
        assert Client().post(DELETE).status_code == 401
