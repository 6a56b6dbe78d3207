"""One scenario through every way a project authenticates (``--ds=tests.settings_allauth``).

A guest adds data (a basket with an item, a note), then either signs up (the guest is
upgraded in place) or signs into an existing account (the guest is linked into it)
through one path: anonauth's API, Django's login views, allauth's forms, headless API and
social logins, an async view. Each path is one row of a table driving
:func:`test_scenario`; every row ends with the same checks, :func:`assert_scenario`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from django.conf import settings

if "allauth.account" not in settings.INSTALLED_APPS:
    pytest.skip("needs --ds=tests.settings_allauth", allow_module_level=True)

import jwt
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from asgiref.sync import async_to_sync
from axes.models import AccessLog
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import AsyncClient, Client, override_settings
from rest_framework.authtoken.models import Token

from anonauth.contrib.simplejwt import refresh_token_for
from anonauth.guests import create_guest, is_guest
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, guest_client, make_registered_user
from tests.linkapp.models import Note
from tests.testapp.models import Basket, BasketItem

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.pathsapp.urls_scenarios")]

UPGRADE, LINK = "upgrade", "link"
# How the client authenticates: the session cookie (with CSRF), the session in
# ``X-Session-Token`` (an app, no cookies), a simplejwt access token, a DRF Token.
COOKIE, APP, JWT, TOKEN = "cookie", "app", "jwt", "token"

NEW_EMAIL = "ada@example.com"
OWNER_EMAIL = "owner@example.com"
PASSWORD = "correct horse battery staple"
APP_AGENT = "okhttp/4.12"
SESSION_URL = "/auth/anonymous/session/"
JWT_ONLY_URL = "/paths/jwt-only/"
CALLBACK_URL = "/signed-in/"  # where allauth headless sends the browser back

# The project authenticates DRF views by session, Token and JWT (so anonauth's endpoints
# accept Token and JWT clients too).
TOKEN_AUTHENTICATION = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ]
}

GOOGLE_CLIENT_ID = "scenario.apps.googleusercontent.com"
GOOGLE = {"google": {"APP": {"client_id": GOOGLE_CLIENT_ID, "secret": "shh", "key": ""}}}
GOOGLE_SUB = "108204268033311374519"


@pytest.fixture(autouse=True)
def _token_authentication(settings: Any) -> None:
    settings.REST_FRAMEWORK = TOKEN_AUTHENTICATION


# The visitor


@dataclass
class Visitor:
    """A guest's client and the credential it holds (``kind`` says which); with ``asgi``
    its requests go through Django's ASGI handler (``AsyncClient``)."""

    kind: str
    client: Client
    guest_id: int
    credential: str
    asgi: bool = False

    def headers(self) -> dict[str, str]:
        """What the client sends with each request besides its cookies."""
        if self.kind == COOKIE:
            return {"X-CSRFToken": self.client.cookies[settings.CSRF_COOKIE_NAME].value}
        if self.kind == APP:
            self.client.cookies.clear()  # an app keeps no cookies
            return {"X-Session-Token": self.credential}
        scheme = "Bearer" if self.kind == JWT else "Token"
        return {"Authorization": f"{scheme} {self.credential}"}

    def post(self, url: str, data: dict[str, Any] | None = None, *, form: bool = False) -> Any:
        kwargs: dict[str, Any] = {"headers": self.headers()}
        if not form:
            kwargs["content_type"] = "application/json"
        if self.asgi:
            return async_to_sync(self.async_client().post)(url, data or {}, **kwargs)
        return self.client.post(url, data or {}, **kwargs)

    def get(self, url: str) -> Any:
        if self.asgi:
            return async_to_sync(self.async_client().get)(url, headers=self.headers())
        return self.client.get(url, headers=self.headers())

    def async_client(self) -> AsyncClient:
        """An ``AsyncClient`` sharing the client's cookies (both see what a response sets)."""
        agent = self.client.defaults["HTTP_USER_AGENT"]
        client = AsyncClient(enforce_csrf_checks=True, headers={"user-agent": agent})
        client.cookies = self.client.cookies
        return client

    def session_cookie(self) -> str:
        return self.client.cookies[settings.SESSION_COOKIE_NAME].value

    def credential_after(self, response: Any, key: Callable[[dict[str, Any]], str]) -> str:
        """The credential to go on with after ``response``: the cookie client's session
        cookie, or what ``key`` picks from the response body."""
        assert response.status_code == 200, response.content
        return self.session_cookie() if self.kind == COOKIE else key(response.json())


def arrive(kind: str, *, asgi: bool = False) -> Visitor:
    """A new guest on a client of ``kind``, with a basket, an item in it and a note."""
    if kind == COOKIE:
        client = guest_client(Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_USER_AGENT))
        guest_id = int(client.session["_auth_user_id"])
        credential = client.cookies[settings.SESSION_COOKIE_NAME].value
    elif kind == APP:
        client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=APP_AGENT)
        response = client.post("/auth/anonymous/sign-in/")
        assert response.status_code == 201, response.content
        guest_id, credential = response.json()["user"]["id"], response.json()["session_token"]
    else:
        client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=APP_AGENT)
        guest = create_guest()
        guest_id = guest.pk
        if kind == JWT:
            credential = str(refresh_token_for(guest).access_token)
        else:
            credential = Token.objects.create(user=guest).key
    basket = Basket.objects.create(owner_id=guest_id)
    BasketItem.objects.create(basket=basket, name="Teapot", quantity=2)
    Note.objects.create(author_id=guest_id, text="remember the milk")
    return Visitor(kind, client, guest_id, credential, asgi)


def make_owner() -> Any:
    """The existing account a guest signs into (username ``owner``, a verified email)."""
    owner = make_registered_user(OWNER_EMAIL, password=PASSWORD, username="owner")
    EmailAddress.objects.create(user=owner, email=OWNER_EMAIL, primary=True, verified=True)
    return owner


# The one set of checks


def assert_scenario(visitor: Visitor, outcome: str, owner: Any, *, before: str, after: str) -> None:
    """After an upgrade the guest is the account (same id); after a link its data is the
    owner's and the guest is gone; either way no other user or guest row, a new session
    key (or token), and a credential that works."""
    users = get_user_model().objects
    if outcome == UPGRADE:
        user = users.get(pk=visitor.guest_id)
        assert not is_guest(user)
        assert user.email == NEW_EMAIL
    else:
        user = owner
        assert not users.filter(pk=visitor.guest_id).exists()
        assert not Guest.objects.filter(user_id=visitor.guest_id).exists()
    assert BasketItem.objects.get(basket__owner=user).quantity == 2
    assert list(Note.objects.values_list("author_id", flat=True)) == [user.pk]
    assert list(users.values_list("pk", flat=True)) == [user.pk]
    assert Guest.objects.count() == 0

    assert after != before
    assert signed_in_as(visitor.kind, after) == {"id": user.pk, "is_guest": False}
    if visitor.kind in (COOKIE, APP) or outcome == LINK:
        # The guest's session is gone; so is a token of a linked guest (a JWT of an
        # upgraded one still names the same user, as documented).
        assert signed_in_as(visitor.kind, before) is None


def signed_in_as(kind: str, credential: str) -> dict[str, Any] | None:
    """Who a fresh client holding ``credential`` is, by anonauth's ``session/`` (session
    credentials) or by a JWT/Token-only view; ``None`` when it is turned away."""
    client = Client(HTTP_USER_AGENT=APP_AGENT)
    if kind in (COOKIE, APP):
        if kind == COOKIE:
            client.cookies[settings.SESSION_COOKIE_NAME] = credential
            response = client.get(SESSION_URL)
        else:
            response = client.get(SESSION_URL, HTTP_X_SESSION_TOKEN=credential)
        user = response.json()["user"] if response.status_code == 200 else None
    else:
        scheme = "Bearer" if kind == JWT else "Token"
        response = client.get(JWT_ONLY_URL, HTTP_AUTHORIZATION=f"{scheme} {credential}")
        user = response.json() if response.status_code == 200 else None
    return None if user is None else {"id": user["id"], "is_guest": user["is_guest"]}


# The paths. Each gets the visitor (and the owner, for a link) and returns the
# credential the client goes on with.


def anonauth_credential(body: dict[str, Any]) -> str:
    return body.get("session_token") or body.get("token") or body["tokens"]["access"]


def anonauth_upgrade(visitor: Visitor, owner: Any) -> str:
    response = visitor.post("/auth/anonymous/upgrade/", {"email": NEW_EMAIL, "password": PASSWORD})
    return visitor.credential_after(response, anonauth_credential)


def anonauth_link(visitor: Visitor, owner: Any) -> str:
    response = visitor.post("/auth/anonymous/link/", {"login": OWNER_EMAIL, "password": PASSWORD})
    return visitor.credential_after(response, anonauth_credential)


def allauth_credential(body: dict[str, Any]) -> str:
    return str(body["meta"]["session_token"])


def headless(visitor: Visitor, endpoint: str) -> str:
    return f"/_allauth/{'app' if visitor.kind == APP else 'browser'}/v1/auth/{endpoint}"


def allauth_signup(visitor: Visitor, owner: Any) -> str:
    response = visitor.post(
        "/accounts/signup/", {"email": NEW_EMAIL, "password1": PASSWORD}, form=True
    )
    assert response.status_code == 302, response.content
    return visitor.session_cookie()


def headless_signup(visitor: Visitor, owner: Any) -> str:
    response = visitor.post(headless(visitor, "signup"), {"email": NEW_EMAIL, "password": PASSWORD})
    return visitor.credential_after(response, allauth_credential)


def social_login(visitor: Visitor, uid: str, email: str, *, headless: bool = False) -> str:
    """allauth's network-free ``dummy`` provider: start (allauth's form view, or the
    headless browser ``provider/redirect``), then the provider's authorization form."""
    if headless:
        start_url = "/_allauth/browser/v1/auth/provider/redirect"
        start_data = {"provider": "dummy", "process": "login", "callback_url": CALLBACK_URL}
    else:
        start_url, start_data = "/accounts/dummy/login/", {"process": "login"}
    start = visitor.post(start_url, start_data, form=True)
    assert start.status_code == 302, start.content
    data = {"id": uid, "email": email, "email_verified": "on"}
    response = visitor.post(start["Location"], data, form=True)
    assert response.status_code == 302, response.content
    if headless:
        assert response["Location"] == CALLBACK_URL  # no ``?error=...``
    return visitor.session_cookie()


def social_signup(visitor: Visitor, owner: Any) -> str:
    return social_login(visitor, "1234", NEW_EMAIL)


def social_login_existing(visitor: Visitor, owner: Any) -> str:
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")
    return social_login(visitor, "999", OWNER_EMAIL)


def headless_social_signup(visitor: Visitor, owner: Any) -> str:
    return social_login(visitor, "1234", NEW_EMAIL, headless=True)


def headless_social_login_existing(visitor: Visitor, owner: Any) -> str:
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")
    return social_login(visitor, "999", OWNER_EMAIL, headless=True)


def django_login_view(visitor: Visitor, owner: Any) -> str:
    response = visitor.post(
        "/django/login/", {"username": "owner", "password": PASSWORD}, form=True
    )
    assert response.status_code == 302, response.content
    return visitor.session_cookie()


def plain_login(visitor: Visitor, owner: Any) -> str:
    response = visitor.get(f"/paths/login/{owner.pk}/")
    assert response.status_code == 200, response.content
    return visitor.session_cookie()


def async_alogin(visitor: Visitor, owner: Any) -> str:
    """An ``async def`` view calling ``alogin()``."""
    response = visitor.get(f"/paths/alogin/{owner.pk}/")
    assert response.status_code == 200, response.content
    return visitor.session_cookie()


def admin_login(visitor: Visitor, owner: Any) -> str:
    owner.is_staff = True
    owner.save()
    data = {"username": "owner", "password": PASSWORD, "next": "/admin/"}
    response = visitor.post("/admin/login/", data, form=True)
    assert response.status_code == 302, response.content
    assert response["Location"] == "/admin/"
    return visitor.session_cookie()


def allauth_login(visitor: Visitor, owner: Any) -> str:
    response = visitor.post(
        "/accounts/login/", {"login": OWNER_EMAIL, "password": PASSWORD}, form=True
    )
    assert response.status_code == 302, response.content
    return visitor.session_cookie()


LOGIN_CODE = r"^([A-Z0-9]{4}-[A-Z0-9]{4}|[A-Z0-9]{6})$"  # allauth 65.15 on, and before


def mailed_code() -> str:
    code = re.search(LOGIN_CODE, mail.outbox[-1].body, re.MULTILINE)
    assert code is not None, mail.outbox[-1].body
    return code.group(1)


def allauth_login_by_code(visitor: Visitor, owner: Any) -> str:
    requested = visitor.post("/accounts/login/code/", {"email": OWNER_EMAIL}, form=True)
    assert requested.status_code == 302, requested.content
    confirmed = visitor.post(requested["Location"], {"code": mailed_code()}, form=True)
    assert confirmed.status_code == 302, confirmed.content
    return visitor.session_cookie()


def headless_login(visitor: Visitor, owner: Any) -> str:
    response = visitor.post(
        headless(visitor, "login"), {"email": OWNER_EMAIL, "password": PASSWORD}
    )
    return visitor.credential_after(response, allauth_credential)


def headless_login_by_code(visitor: Visitor, owner: Any) -> str:
    requested = visitor.post(headless(visitor, "code/request"), {"email": OWNER_EMAIL})
    assert requested.status_code == 401, requested.content  # pending: the code step
    if visitor.kind == APP:  # the pending login's token (allauth keeps the guest's)
        visitor.credential = requested.json()["meta"].get("session_token", visitor.credential)
    response = visitor.post(headless(visitor, "code/confirm"), {"code": mailed_code()})
    return visitor.credential_after(response, allauth_credential)


# allauth headless ``provider/token`` with Google: a real RS256 id_token, signed with a
# key of the test's own; only fetching Google's certificates (HTTP) is mocked.

GOOGLE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextmanager
def google() -> Iterator[None]:
    """Google configured with an app, its certificates answered by the test's key."""
    with (
        override_settings(SOCIALACCOUNT_PROVIDERS=GOOGLE),
        mock.patch(
            "allauth.socialaccount.internal.jwtkit.fetch_key",
            return_value=("RS256", GOOGLE_KEY.public_key()),
        ) as fetch_key,
    ):
        yield
    assert fetch_key.called  # the signature was verified with the key


def google_id_token(email: str) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": GOOGLE_CLIENT_ID,
        "azp": GOOGLE_CLIENT_ID,
        "sub": GOOGLE_SUB,
        "email": email,
        "email_verified": True,
        "given_name": "Ada",
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode(claims, GOOGLE_KEY, algorithm="RS256", headers={"kid": "scenario"})


def provider_token(visitor: Visitor, email: str, process: str = "login") -> str:
    data = {
        "provider": "google",
        "process": process,
        "token": {"client_id": GOOGLE_CLIENT_ID, "id_token": google_id_token(email)},
    }
    with google():
        response = visitor.post(headless(visitor, "provider/token"), data)
    return visitor.credential_after(response, allauth_credential)


def provider_token_signup(visitor: Visitor, owner: Any) -> str:
    return provider_token(visitor, NEW_EMAIL)


def provider_token_existing(visitor: Visitor, owner: Any) -> str:
    SocialAccount.objects.create(user=owner, provider="google", uid=GOOGLE_SUB)
    return provider_token(visitor, OWNER_EMAIL)


def provider_token_connect_existing(visitor: Visitor, owner: Any) -> str:
    """A guest's "connect" with the owner's Google account: a sign-in, like a login."""
    SocialAccount.objects.create(user=owner, provider="google", uid=GOOGLE_SUB)
    return provider_token(visitor, OWNER_EMAIL, process="connect")


Run = Callable[[Visitor, Any], str]


def path(outcome: str, kind: str, run: Run, *, xfail: str = "") -> Any:
    """A row of the table, named ``<outcome>-<path>-<client>``; ``xfail`` names the
    defect of a path that fails (strict: the row fails once it is fixed)."""
    name = f"{outcome}-{run.__name__.replace('_', '-')}-{kind}"
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(outcome, kind, run, id=name, marks=marks)


PATHS = [
    # Sign up: the guest is upgraded in place.
    path(UPGRADE, COOKIE, anonauth_upgrade),
    path(UPGRADE, APP, anonauth_upgrade),
    path(UPGRADE, JWT, anonauth_upgrade),
    path(UPGRADE, TOKEN, anonauth_upgrade),
    path(UPGRADE, COOKIE, allauth_signup),
    path(UPGRADE, COOKIE, headless_signup),
    path(UPGRADE, APP, headless_signup),
    path(UPGRADE, COOKIE, social_signup),
    path(UPGRADE, COOKIE, headless_social_signup),
    path(UPGRADE, APP, provider_token_signup),
    path(UPGRADE, COOKIE, provider_token_signup),
    # Sign into an existing account: the guest is linked into it.
    path(LINK, COOKIE, anonauth_link),
    path(LINK, APP, anonauth_link),
    path(LINK, JWT, anonauth_link),
    path(LINK, TOKEN, anonauth_link),
    path(LINK, COOKIE, django_login_view),
    path(LINK, COOKIE, plain_login),
    path(LINK, COOKIE, async_alogin),
    path(LINK, COOKIE, admin_login),
    path(LINK, COOKIE, allauth_login),
    path(LINK, COOKIE, allauth_login_by_code),
    path(LINK, COOKIE, headless_login),
    path(LINK, APP, headless_login),
    path(LINK, COOKIE, headless_login_by_code),
    path(LINK, APP, headless_login_by_code),
    path(LINK, COOKIE, social_login_existing),
    path(LINK, COOKIE, headless_social_login_existing),
    path(LINK, APP, provider_token_existing),
    path(LINK, COOKIE, provider_token_existing),
    path(LINK, APP, provider_token_connect_existing),
    path(LINK, COOKIE, provider_token_connect_existing),
]


def scenario(outcome: str, kind: str, asgi: bool, run: Run) -> None:
    """The guest arrives (through WSGI) with its data, then takes the path."""
    visitor = arrive(kind, asgi=asgi)
    owner = make_owner() if outcome == LINK else None
    before = visitor.credential
    after = run(visitor, owner)
    assert_scenario(visitor, outcome, owner, before=before, after=after)


# Every path through Django's WSGI handler (``Client``) and its ASGI one (``AsyncClient``).
HANDLERS = pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])


@HANDLERS
@pytest.mark.parametrize(("outcome", "kind", "run"), PATHS)
def test_scenario(outcome: str, kind: str, run: Run, asgi: bool) -> None:
    scenario(outcome, kind, asgi, run)


# The same scenario with another backend first, as django-axes (with its middleware)
# and rules document.

AXES = {
    "AUTHENTICATION_BACKENDS": [
        "axes.backends.AxesStandaloneBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
        "django.contrib.auth.backends.ModelBackend",
    ],
    "MIDDLEWARE": [*settings.MIDDLEWARE, "axes.middleware.AxesMiddleware"],
}
RULES = {
    "AUTHENTICATION_BACKENDS": [
        "rules.permissions.ObjectPermissionBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
        "django.contrib.auth.backends.ModelBackend",
    ],
}
SUBSET = [
    path(UPGRADE, COOKIE, anonauth_upgrade),
    path(LINK, COOKIE, anonauth_link),
    path(LINK, APP, anonauth_link),
    path(LINK, COOKIE, allauth_login),
    path(LINK, APP, headless_login),
]


@HANDLERS
@pytest.mark.parametrize("backends", [AXES, RULES], ids=["axes", "rules"])
@pytest.mark.parametrize(("outcome", "kind", "run"), SUBSET)
def test_scenario_with_another_backend_first(
    backends: dict[str, Any], outcome: str, kind: str, run: Run, asgi: bool
) -> None:
    with override_settings(**backends):
        scenario(outcome, kind, asgi, run)
    if backends is AXES:  # axes logged the sign-in, its user named (an upgrade is none)
        logins = AccessLog.objects.values_list("username", flat=True)
        assert list(logins) == (["owner"] if outcome == LINK else [])


def test_the_table_names_each_path_once() -> None:
    ids = [param.id for param in PATHS]
    assert len(ids) == len(set(ids))
