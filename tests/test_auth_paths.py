"""Guests through the ways a project authenticates: other authentication backends, DRF
ViewSets and function views, Token and JWT authentication, CSRF, async views, app clients.

Each class names the defect it pins down (the issue "Guests through every way a Django
project authenticates").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from anonauth.guests import create_guest, is_guest
from anonauth.models import Guest
from anonauth.test import make_registered_user
from tests.conftest import BROWSER_AGENT
from tests.linkapp.models import Note

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.pathsapp.urls")]

SIGN_IN = "/auth/anonymous/sign-in/"
SESSION = "/auth/anonymous/session/"
LINK = "/auth/anonymous/link/"
PASSWORD = "correct-horse-42"
AGENT = {"user-agent": BROWSER_AGENT}
AXES_FIRST = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
RULES_FIRST = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A BaseBackend subclass inherits a get_user() that returns None.
BASE_BACKEND_FIRST = [
    "tests.testapp.backends.PermissionOnlyBackend",
    "django.contrib.auth.backends.ModelBackend",
]


def app_client() -> tuple[Client, str]:
    """An app client (no cookies) signed in as a new guest, and its session token."""
    client = Client(HTTP_USER_AGENT="okhttp/4.12", enforce_csrf_checks=True)
    response = client.post(SIGN_IN)
    assert response.status_code == 201, response.content
    return Client(HTTP_USER_AGENT="okhttp/4.12", enforce_csrf_checks=True), response.json()[
        "session_token"
    ]


class TestOtherBackendsFirst:
    """1. With axes' or rules' backend first, every guest request after the first was a
    500: the session named ``AUTHENTICATION_BACKENDS[0]``, which has no ``get_user``."""

    @pytest.mark.parametrize(
        "backends",
        [AXES_FIRST, RULES_FIRST, BASE_BACKEND_FIRST],
        ids=["axes", "rules", "base-backend"],
    )
    def test_a_guest_stays_signed_in(self, browser: Client, backends: list[str]) -> None:
        with override_settings(AUTHENTICATION_BACKENDS=backends):
            first = browser.get("/guest-fn/").json()
            again = browser.get("/guest-fn/")
        assert again.status_code == 200
        assert again.json()["id"] == first["id"]
        assert again.json()["is_guest"]
        assert Guest.objects.count() == 1


class TestSessionTokenAuthentication:
    """Project views accept the ``X-Session-Token`` header through a DRF class."""

    def test_the_header_authenticates_without_csrf(self) -> None:
        client, token = app_client()
        body = client.get("/paths/session-token/", HTTP_X_SESSION_TOKEN=token).json()
        assert body["is_guest"]
        assert body["auth"] == token
        assert client.post("/paths/session-token/", HTTP_X_SESSION_TOKEN=token).status_code == 200

    def test_no_header_falls_through_to_the_cookie(self, browser: Client) -> None:
        guest_id = browser.get("/guest-fn/").json()["id"]
        body = browser.get("/paths/session-token/").json()
        assert (body["id"], body["auth"]) == (guest_id, None)

    def test_an_unknown_token_is_401_with_the_header_named(self) -> None:
        response = Client().get("/paths/session-token/", HTTP_X_SESSION_TOKEN="nonsense")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "X-Session-Token"


class TestAppClientLink:
    """3. ``POST link/`` signed app clients out: no token in the answer, the guest's dead."""

    def test_link_answers_the_token_to_go_on_with(self) -> None:
        member = make_registered_user()
        client, token = app_client()
        response = client.post(
            LINK,
            {"login": member.email, "password": PASSWORD},
            content_type="application/json",
            HTTP_X_SESSION_TOKEN=token,
        )
        assert response.status_code == 200, response.content
        new_token = response.json()["session_token"]
        assert new_token
        assert new_token != token
        session = client.get(SESSION, HTTP_X_SESSION_TOKEN=new_token)
        assert session.json()["user"]["id"] == member.pk
        assert client.get(SESSION, HTTP_X_SESSION_TOKEN=token).status_code == 401


class TestDRFViews:
    """4. ``@guest_allowed`` on a router-built ViewSet was ignored (403, no guest)."""

    def test_a_viewset_on_a_router_creates_a_guest(self, browser: Client) -> None:
        response = browser.get("/paths/notes/")
        assert response.status_code == 200, response.content
        assert response.json()["is_guest"]
        assert Guest.objects.count() == 1

    def test_a_guests_only_viewset_on_a_router(self, browser: Client, member: Any) -> None:
        """``GuestRequiredMixin`` on a router-built ViewSet: a visitor becomes a guest and
        passes, a registered user is refused (403)."""
        response = browser.get("/paths/guest-notes/")
        assert response.status_code == 200, response.content
        assert response.json()["is_guest"]
        assert Guest.objects.count() == 1
        client = Client()
        client.force_login(member)
        refused = client.get("/paths/guest-notes/")
        assert refused.status_code == 403
        assert Guest.objects.count() == 1

    def test_an_api_view_function(self, browser: Client) -> None:
        response = browser.get("/paths/api-function/")
        assert response.status_code == 200, response.content
        assert response.json()["is_guest"]

    def test_a_guest_posts_to_a_viewset_with_its_token(self) -> None:
        client, token = app_client()
        response = client.post(
            "/paths/notes/",
            {"text": "hi"},
            content_type="application/json",
            HTTP_X_SESSION_TOKEN=token,
        )
        assert response.status_code == 201, response.content
        assert Note.objects.get().author_id == response.json()["id"]


class TestAsyncDecorators:
    """5. ``@registered_user_required`` on an ``async def`` view answered 500."""

    def test_registered_users_get_in(self, member: Any) -> None:
        client = AsyncClient()
        async_to_sync(client.aforce_login)(member)
        response = async_to_sync(client.get)("/paths/async-members/", headers=AGENT)
        assert response.status_code == 200
        assert response.content == b"members only"

    def test_guests_are_turned_away(self, browser: Client) -> None:
        browser.get("/guest-fn/")
        response = browser.get("/paths/async-members/")
        assert response.status_code == 302


class TestTokenUsersStayThemselves:
    """6. A registered user authenticated by Token or JWT from a client that keeps
    cookies was turned into a guest (and, session first, answered as that guest)."""

    @pytest.mark.parametrize("url", ["/paths/session-first/", "/paths/token-first/"])
    @pytest.mark.parametrize("scheme", ["Token", "Bearer"])
    def test_no_guest_for_a_token_user(
        self, browser: Client, member: Any, url: str, scheme: str
    ) -> None:
        if scheme == "Token":
            credential = Token.objects.create(user=member).key
        else:
            credential = str(AccessToken.for_user(member))
        response = browser.get(url, HTTP_AUTHORIZATION=f"{scheme} {credential}")
        assert response.status_code == 200, response.content
        assert response.json() == {"id": member.pk, "is_guest": False}
        assert not Guest.objects.exists()

    def test_a_view_without_session_authentication_is_not_answered_by_the_session(
        self, browser: Client, member: Any
    ) -> None:
        """``@guest_allowed`` lets the guest's session in (its identity lives there),
        not a registered user's: the view authenticates by JWT only."""
        browser.force_login(member)
        response = browser.get("/paths/guest-jwt/")
        assert response.status_code == 401, response.content
        assert not Guest.objects.exists()
        jwt = browser.get(
            "/paths/guest-jwt/", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(member)}"
        )
        assert jwt.json() == {"id": member.pk, "is_guest": False}

    def test_a_guest_of_a_view_without_session_authentication_stays_itself(
        self, browser: Client
    ) -> None:
        first = browser.get("/paths/guest-jwt/").json()
        assert first["is_guest"]
        assert browser.get("/paths/guest-jwt/").json() == first
        assert Guest.objects.count() == 1

    def test_a_bad_token_is_refused_and_writes_nothing(self, browser: Client) -> None:
        response = browser.get("/paths/token-first/", HTTP_AUTHORIZATION="Token nonsense")
        assert response.status_code == 401
        assert get_user_model().objects.count() == 0
        assert "sessionid" not in response.cookies


class TestTokenGuests:
    """7. A guest given a JWT never had ``last_seen`` written: the touch was driven by
    the session only, so an active token guest was purged."""

    def stale_guest_with_jwt(self) -> tuple[Any, str]:
        from anonauth.contrib.simplejwt import refresh_token_for

        guest = create_guest()
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=40))
        return guest, str(refresh_token_for(guest).access_token)

    def test_the_jwt_says_is_guest(self) -> None:
        from anonauth.contrib.simplejwt import refresh_token_for

        guest = create_guest()
        assert refresh_token_for(guest)["is_guest"] is True
        assert refresh_token_for(guest).access_token["is_guest"] is True
        assert refresh_token_for(make_registered_user())["is_guest"] is False

    def test_a_token_guest_is_touched_once_per_interval(
        self, django_assert_num_queries: Any
    ) -> None:
        guest, access = self.stale_guest_with_jwt()
        client = Client(HTTP_USER_AGENT="okhttp/4.12")
        assert client.get("/paths/jwt-only/", HTTP_AUTHORIZATION=f"Bearer {access}").json() == {
            "id": guest.pk,
            "is_guest": True,
        }
        assert timezone.now() - Guest.objects.get().last_seen < timedelta(minutes=1)
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=40))
        with django_assert_num_queries(2):  # the user and the guest flag; no UPDATE
            client.get("/paths/jwt-only/", HTTP_AUTHORIZATION=f"Bearer {access}")
        assert timezone.now() - Guest.objects.get().last_seen > timedelta(days=39)

    def test_a_registered_jwt_user_costs_no_extra_query(
        self, member: Any, django_assert_num_queries: Any
    ) -> None:
        access = str(RefreshToken.for_user(member).access_token)
        client = Client(HTTP_USER_AGENT="okhttp/4.12")
        with django_assert_num_queries(2):  # the user; the view's is_guest
            client.get("/paths/jwt-only/", HTTP_AUTHORIZATION=f"Bearer {access}")

    def test_a_drf_token_guest_is_touched(self) -> None:
        guest = create_guest()
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=40))
        key = Token.objects.create(user=guest).key
        client = Client(HTTP_USER_AGENT="okhttp/4.12")
        assert client.get("/paths/jwt-only/", HTTP_AUTHORIZATION=f"Token {key}").json()["is_guest"]
        assert timezone.now() - Guest.objects.get().last_seen < timedelta(minutes=1)


class TestCSRFBeforeCreation:
    """8. A DRF request that failed CSRF still created a guest and set a session cookie:
    the guest was created in ``process_view``, before DRF checks CSRF itself."""

    def test_a_cross_site_post_creates_nothing(self) -> None:
        client = Client(HTTP_USER_AGENT=BROWSER_AGENT, enforce_csrf_checks=True)
        client.cookies["seen"] = "1"
        response = client.post("/paths/session-first/")
        assert response.status_code == 403, response.content
        assert get_user_model().objects.count() == 0
        assert "sessionid" not in response.cookies

    def test_a_post_with_the_csrf_token_creates_the_guest(self) -> None:
        client = Client(HTTP_USER_AGENT=BROWSER_AGENT, enforce_csrf_checks=True)
        client.get("/csrf/")
        response = client.post(
            "/paths/session-first/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
        )
        assert response.status_code == 200, response.content
        assert response.json()["is_guest"]
        assert Note.objects.get().author_id == response.json()["id"]


class TestAsyncAPI:
    """9. ``is_guest`` and ``ensure_guest`` raised ``SynchronousOnlyOperation`` in an async
    view: ``ais_guest`` and ``aensure_guest`` work there."""

    async def ensure(self) -> dict[str, Any]:
        client = AsyncClient()
        client.cookies["seen"] = "1"
        first = (await client.get("/paths/async-ensure/", headers=AGENT)).json()
        again = (await client.get("/paths/async-ensure/", headers=AGENT)).json()
        assert again["id"] == first["id"]
        return first

    def test_aensure_guest_and_ais_guest(self) -> None:
        body = async_to_sync(self.ensure)()
        assert body["is_guest"] is True
        assert body["refusal"] is None
        assert Guest.objects.filter(user_id=body["id"]).exists()

    def test_aensure_guest_refusal(self) -> None:
        async def refused() -> dict[str, Any]:
            client = AsyncClient()
            return (
                await client.get("/paths/async-ensure/", headers={"user-agent": "curl/8.0"})
            ).json()

        assert async_to_sync(refused)() == {
            "id": None,
            "is_guest": False,
            "refusal": "user_agent_refused",
        }

    def test_ais_guest_of_a_registered_user(self, member: Any) -> None:
        from anonauth.guests import ais_guest

        assert async_to_sync(ais_guest)(member) is False
        assert async_to_sync(ais_guest)(create_guest()) is True
        assert is_guest(member) is False


class TestLoginLinks:
    """Any ``login()``/``alogin()`` of an account by a guest's request links the guest."""

    @pytest.mark.parametrize("view", ["login", "alogin"])
    def test_login_links(self, browser: Client, view: str) -> None:
        guest_id = browser.get("/guest-fn/").json()["id"]
        Note.objects.create(author_id=guest_id, text="mine")
        member = make_registered_user()
        assert browser.get(f"/paths/{view}/{member.pk}/").status_code == 200
        assert Note.objects.get().author_id == member.pk
        assert not get_user_model().objects.filter(pk=guest_id).exists()
        assert browser.get(SESSION).json()["user"]["id"] == member.pk


@pytest.mark.usefixtures("token_authentication")
class TestTokenClientsGoOn:
    """Upgrade and link answer token clients with what they need to go on: a JWT client
    gets a new pair (``is_guest`` false, or the account's), a DRF Token client the
    account's token (the guest's went with the guest)."""

    UPGRADE = "/auth/anonymous/upgrade/"

    def jwt_guest(self) -> tuple[Any, str]:
        from anonauth.contrib.simplejwt import refresh_token_for

        guest = create_guest()
        return guest, f"Bearer {refresh_token_for(guest).access_token}"

    def test_a_jwt_guest_upgrades_and_gets_new_tokens(self) -> None:
        guest, authorization = self.jwt_guest()
        response = Client(HTTP_USER_AGENT="okhttp/4.12").post(
            self.UPGRADE,
            {"email": "ada@example.com", "password": PASSWORD},
            content_type="application/json",
            HTTP_AUTHORIZATION=authorization,
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["user"] == {**body["user"], "id": guest.pk, "is_guest": False}
        assert body["session_token"] is None
        access = AccessToken(body["tokens"]["access"])
        # simplejwt 5.5.1 on writes the claim as text, earlier releases as it is
        assert (str(access["user_id"]), access["is_guest"]) == (str(guest.pk), False)
        assert RefreshToken(body["tokens"]["refresh"])["is_guest"] is False

    def test_a_jwt_guest_links_and_gets_the_accounts_tokens(self) -> None:
        member = make_registered_user()
        guest, authorization = self.jwt_guest()
        Note.objects.create(author=guest, text="mine")
        response = Client(HTTP_USER_AGENT="okhttp/4.12").post(
            LINK,
            {"login": member.email, "password": PASSWORD},
            content_type="application/json",
            HTTP_AUTHORIZATION=authorization,
        )
        assert response.status_code == 200, response.content
        access = response.json()["tokens"]["access"]
        assert str(AccessToken(access)["user_id"]) == str(member.pk)
        again = Client(HTTP_USER_AGENT="okhttp/4.12").get(
            "/paths/jwt-only/", HTTP_AUTHORIZATION=f"Bearer {access}"
        )
        assert again.json() == {"id": member.pk, "is_guest": False}
        assert Note.objects.get().author_id == member.pk

    def test_a_drf_token_guest_links_and_gets_the_accounts_token(self) -> None:
        member = make_registered_user()
        guest = create_guest()
        key = Token.objects.create(user=guest).key
        response = Client(HTTP_USER_AGENT="okhttp/4.12").post(
            LINK,
            {"login": member.email, "password": PASSWORD},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {key}",
        )
        assert response.status_code == 200, response.content
        token = response.json()["token"]
        assert Token.objects.get(key=token).user_id == member.pk
        assert not Token.objects.filter(key=key).exists()  # gone with the guest
