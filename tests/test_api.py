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


UPGRADE = "/auth/anonymous/upgrade/"
TRANSFER = "/auth/anonymous/transfer/"
REDEEM = "/auth/anonymous/transfer/redeem/"
NEW_ACCOUNT = {"email": "ada@example.com", "password": "correct horse battery staple"}
APP_AGENT = "MyApp/1.0 okhttp/4.12"
# Authorization headers no token scheme accepts from a browser: an unknown scheme, a
# well-formed DRF Token that names nobody, a JWT that is not one.
FOREIGN_AUTHORIZATIONS = ["Bogus x", f"Token {'0123456789abcdef' * 2}{'01234567'}", "Bearer x.y.z"]


def cookie_guest() -> tuple[Client, Any]:
    """A browser signed in as a new guest by its session cookie, and the guest's id."""
    client = csrf_browser()
    user_id = post_with_token(client, SIGN_IN).json()["user"]["id"]
    return client, user_id


def assert_csrf_refused(response: Any) -> None:
    assert response.status_code == 403, (response.status_code, response.content)
    assert response.json()["code"] == "csrf_failed"


def still_a_guest(user_id: Any) -> bool:
    return Guest.objects.filter(user_id=user_id).exists()


@pytest.mark.usefixtures("token_authentication")
class TestCsrfWithAnAuthorizationHeader:
    """An ``Authorization`` header exempts a request from the CSRF check only when a
    token scheme authenticated it: a cookie session (or a cookie client nobody
    authenticated) is checked whatever headers it carries."""

    @pytest.mark.parametrize("authorization", FOREIGN_AUTHORIZATIONS)
    def test_a_cookie_session_cannot_upgrade_without_the_csrf_token(
        self, authorization: str
    ) -> None:
        client, user_id = cookie_guest()
        response = client.post(
            UPGRADE, NEW_ACCOUNT, content_type="application/json", HTTP_AUTHORIZATION=authorization
        )
        assert_csrf_refused(response)
        assert still_a_guest(user_id)
        assert not get_user_model().objects.filter(email=NEW_ACCOUNT["email"]).exists()

    def test_a_valid_token_does_not_exempt_the_cookie_session(self) -> None:
        """The session authenticates first: a page's own token changes nothing."""
        from rest_framework.authtoken.models import Token

        from anonauth.guests import create_guest

        key = Token.objects.create(user=create_guest()).key
        client, user_id = cookie_guest()
        response = client.post(
            UPGRADE, NEW_ACCOUNT, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
        )
        assert_csrf_refused(response)
        assert still_a_guest(user_id)

    @pytest.mark.parametrize("url", [DELETE, TRANSFER])
    def test_a_cookie_session_cannot_act_without_the_csrf_token(self, url: str) -> None:
        client, user_id = cookie_guest()
        response = client.post(url, HTTP_AUTHORIZATION="Bogus x")
        assert_csrf_refused(response)
        assert still_a_guest(user_id)
        assert not Guest.objects.get(user_id=user_id).transfer_codes.exists()

    def test_a_cookie_session_with_the_csrf_token_goes_on(self) -> None:
        client, user_id = cookie_guest()
        response = client.post(
            UPGRADE,
            NEW_ACCOUNT,
            content_type="application/json",
            HTTP_AUTHORIZATION="Bogus x",
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )
        assert response.status_code == 200, response.content
        assert response.json()["user"]["id"] == user_id
        assert not still_a_guest(user_id)

    def test_an_anonymous_cookie_client_cannot_sign_in_without_the_csrf_token(self) -> None:
        client = csrf_browser()
        response = client.post(SIGN_IN, HTTP_AUTHORIZATION="Bogus x")
        assert_csrf_refused(response)
        assert not Guest.objects.exists()

    def test_an_anonymous_cookie_client_cannot_redeem_without_the_csrf_token(self) -> None:
        """No login CSRF: a page cannot sign the visitor's browser in as its own guest."""
        attacker, attacker_id = cookie_guest()
        code = post_with_token(attacker, TRANSFER).json()["code"]
        victim = csrf_browser()
        response = victim.post(
            REDEEM, {"code": code}, content_type="application/json", HTTP_AUTHORIZATION="Bogus x"
        )
        assert_csrf_refused(response)
        assert victim.get(SESSION).status_code == 401
        assert Guest.objects.get(user_id=attacker_id).transfer_codes.exists()

    def test_a_session_token_client_stays_exempt(self) -> None:
        app = Client(HTTP_USER_AGENT=APP_AGENT, enforce_csrf_checks=True)
        signed_in = app.post(SIGN_IN).json()
        app.cookies["seen"] = "1"  # a cookie jar, but the session is the header's
        response = app.post(
            UPGRADE,
            NEW_ACCOUNT,
            content_type="application/json",
            HTTP_AUTHORIZATION="Bogus x",
            HTTP_X_SESSION_TOKEN=signed_in["session_token"],
        )
        assert response.status_code == 200, response.content
        assert response.json()["user"]["id"] == signed_in["user"]["id"]
        assert response.json()["session_token"] not in (None, signed_in["session_token"])

    @pytest.mark.parametrize("scheme", ["Token", "Bearer"])
    def test_a_token_client_with_cookies_stays_exempt(self, scheme: str) -> None:
        from rest_framework.authtoken.models import Token

        from anonauth.contrib.simplejwt import refresh_token_for
        from anonauth.guests import create_guest

        guest = create_guest()
        if scheme == "Token":
            credential = Token.objects.create(user=guest).key
        else:
            credential = str(refresh_token_for(guest).access_token)
        client = csrf_browser()  # cookies (the CSRF one), and no CSRF token sent
        response = client.post(TRANSFER, HTTP_AUTHORIZATION=f"{scheme} {credential}")
        assert response.status_code == 201, response.content

    @pytest.mark.parametrize("authorization", FOREIGN_AUTHORIZATIONS[1:])
    def test_a_token_that_fails_still_answers_401(self, authorization: str) -> None:
        client = csrf_browser()
        response = client.post(UPGRADE, NEW_ACCOUNT, HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 401
        assert response.json()["code"] != "csrf_failed"
