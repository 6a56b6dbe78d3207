"""django-allauth flows upgrade the guest in place (``--ds=tests.settings_allauth``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from unittest import mock
from urllib.parse import unquote

import pytest
from django.conf import settings

if "allauth.account" not in settings.INSTALLED_APPS:
    pytest.skip("needs --ds=tests.settings_allauth", allow_module_level=True)

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from anonauth import signals
from anonauth.contrib.allauth import AccountAdapter
from anonauth.exceptions import EmailInUse
from anonauth.guests import create_guest, is_guest
from anonauth.test import capture_signal, connected, guest_client, make_registered_user
from anonauth.upgrade import upgrade_guest
from tests.testapp.models import Basket, BasketItem

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
SESSION_URL = "/auth/anonymous/session/"
LOGIN_CODE = r"^([A-Z0-9]{4}-[A-Z0-9]{4}|[A-Z0-9]{6})$"


@pytest.fixture
def guest_browser(browser: Client) -> Client:
    """A browser signed in as a guest with a basket and something in its session."""
    guest_client(browser)
    guest = get_user_model().objects.get(pk=browser.session["_auth_user_id"])
    basket = Basket.objects.create(owner=guest)
    BasketItem.objects.create(basket=basket, name="Teapot", quantity=2)
    session = browser.session
    session["basket_note"] = "gift wrap"
    session.save()
    browser.guest_id = guest.pk  # type: ignore[attr-defined]
    return browser


def guest_id(client: Client) -> Any:
    return client.guest_id  # type: ignore[attr-defined]


def account(client: Client) -> Any:
    return get_user_model().objects.get(pk=guest_id(client))


def signed_in_as(client: Client) -> Any:
    response = client.get(SESSION_URL)
    return response.json()["user"]["id"] if response.status_code == 200 else None


def assert_upgraded_in_place(client: Client, email: str) -> Any:
    user = account(client)
    assert not is_guest(user)
    assert user.email == email
    assert get_user_model().objects.count() == 1  # no user was created
    assert BasketItem.objects.get(basket__owner=user).quantity == 2
    assert client.session["basket_note"] == "gift wrap"
    return user


def mailed_code() -> str:
    """The login code in the last mail: ``XXXX-XXXX`` (allauth 65.15 on) or ``XXXXXX``."""
    code = re.search(LOGIN_CODE, mail.outbox[-1].body, re.MULTILINE)
    assert code is not None, mail.outbox[-1].body
    return code.group(1)


def registered_user(email: str) -> Any:
    user = make_registered_user(email, password="x", username="owner")
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user


# Signup with the form view


def test_signup_page_is_open_to_guests_only(guest_browser: Client, client: Client) -> None:
    assert guest_browser.get("/accounts/signup/").status_code == 200

    client.force_login(registered_user("owner@example.com"))
    assert client.get("/accounts/signup/").status_code == 302  # allauth's redirect stays


def test_signup_upgrades_guest_in_place(
    guest_browser: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        capture_signal(signals.guest_upgraded) as upgrades,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = guest_browser.post(
            "/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD}
        )

    assert response.status_code == 302, response.content
    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert user.check_password(PASSWORD)
    assert user.get_username() == "ada"  # named by allauth, like any new account
    assert signed_in_as(guest_browser) == user.pk
    assert [(u["user"].pk, u["method"]) for u in upgrades] == [(user.pk, "password")]
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.primary, address.verified) == ("ada@example.com", True, False)
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]  # "optional": sent, not required


@override_settings(ACCOUNT_EMAIL_VERIFICATION="none")
def test_signup_without_verification_sends_no_mail(guest_browser: Client) -> None:
    guest_browser.post("/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD})

    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert signed_in_as(guest_browser) == user.pk
    assert mail.outbox == []


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory", ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION=True)
def test_mandatory_verification_signs_out_until_confirmed(guest_browser: Client) -> None:
    old_key = guest_browser.session.session_key

    response = guest_browser.post(
        "/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = assert_upgraded_in_place(guest_browser, "ada@example.com")  # session data kept
    assert guest_browser.session.session_key != old_key
    assert signed_in_as(guest_browser) is None  # not signed in before confirming
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    key = re.search(r"/verify-email/(\S+)", mail.outbox[0].body)
    assert key is not None, mail.outbox[0].body

    guest_browser.post(f"/accounts/confirm-email/{unquote(key.group(1))}/")

    assert EmailAddress.objects.get(user=user).verified
    assert signed_in_as(guest_browser) == user.pk  # the same account, its basket waiting
    assert guest_browser.session["basket_note"] == "gift wrap"


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_mandatory_verification_then_password_login(guest_browser: Client) -> None:
    guest_browser.post("/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD})
    user = account(guest_browser)
    EmailAddress.objects.filter(user=user).update(verified=True)

    response = guest_browser.post(
        "/accounts/login/", {"login": "ada@example.com", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert signed_in_as(guest_browser) == user.pk
    assert BasketItem.objects.get(basket__owner=user).quantity == 2


def test_signup_with_an_email_in_use_leaves_the_guest(guest_browser: Client) -> None:
    registered_user("ada@example.com")

    response = guest_browser.post(
        "/accounts/signup/", {"email": "ADA@example.com", "password1": PASSWORD}
    )

    assert response.status_code == 200  # the form again, with its error
    assert response.context["form"].errors["email"]
    assert is_guest(account(guest_browser))
    assert signed_in_as(guest_browser) == guest_id(guest_browser)
    assert mail.outbox == []


# An address in use that allauth's own check lets through: anonauth's upgrade refuses
# it (an account can't be made twice in place), the form says so; never a 500.

IDNA_OWNER = "ada@xn--bcher-kva.example"  # the same address as ada@bücher.example
TAKEN = [
    pytest.param("ada@bücher.example", {}, id="idna-spelling"),
    pytest.param("ada@example.com", {"ACCOUNT_PREVENT_ENUMERATION": "strict"}, id="strict"),
]


def taken_by_owner(email: str) -> None:
    registered_user(IDNA_OWNER if "bücher" in email else email)


def assert_still_the_guest(client: Client) -> None:
    guest = account(client)
    assert is_guest(guest)
    assert signed_in_as(client) == guest.pk
    assert BasketItem.objects.get(basket__owner=guest).quantity == 2
    assert get_user_model().objects.count() == 2


@pytest.mark.parametrize(("email", "options"), TAKEN)
def test_signup_with_an_address_in_use_allauth_lets_through(
    guest_browser: Client, email: str, options: dict[str, Any]
) -> None:
    taken_by_owner(email)

    with override_settings(**options):
        response = guest_browser.post("/accounts/signup/", {"email": email, "password1": PASSWORD})

    assert response.status_code == 200  # the form again, with its error
    assert response.context["form"].errors["email"]
    assert_still_the_guest(guest_browser)


@pytest.mark.parametrize(("email", "options"), TAKEN)
def test_headless_signup_with_an_address_in_use_allauth_lets_through(
    guest_browser: Client, email: str, options: dict[str, Any]
) -> None:
    taken_by_owner(email)

    with override_settings(**options):
        response = guest_browser.post(
            "/_allauth/browser/v1/auth/signup",
            {"email": email, "password": PASSWORD},
            content_type="application/json",
        )

    assert response.status_code == 400, response.content
    assert [e["code"] for e in response.json()["errors"]] == ["email_taken"]
    assert_still_the_guest(guest_browser)


def test_social_signup_with_an_address_in_use_allauth_lets_through(
    guest_browser: Client,
) -> None:
    registered_user(IDNA_OWNER)

    response = social_login(guest_browser, id=31, email="ada@bücher.example")

    # allauth's social signup form asks for another address, as for any taken one
    assert response.status_code == 302
    assert response["Location"] == "/accounts/3rdparty/signup/"
    form = guest_browser.post("/accounts/3rdparty/signup/", {"email": "ada@bücher.example"})
    assert form.status_code == 200  # the form again, with its error
    assert form.context["form"].errors["email"]
    assert_still_the_guest(guest_browser)
    assert not SocialAccount.objects.exists()


def test_upgrade_guest_checks_allauth_email_addresses() -> None:
    owner = registered_user("owner@example.com")
    EmailAddress.objects.create(user=owner, email="second@example.com", verified=False)
    guest = create_guest()

    with pytest.raises(EmailInUse):
        upgrade_guest(guest, email="Second@Example.com", password=PASSWORD)

    assert is_guest(get_user_model().objects.get(pk=guest.pk))


# Headless signup


def test_headless_signup_upgrades_guest_in_place(guest_browser: Client) -> None:
    response = guest_browser.post(
        "/_allauth/browser/v1/auth/signup",
        {"email": "ada@example.com", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["data"]["user"]["id"] == guest_id(guest_browser)
    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert signed_in_as(guest_browser) == user.pk
    assert EmailAddress.objects.filter(user=user, email="ada@example.com").exists()


def test_headless_signup_still_refuses_registered_users(client: Client) -> None:
    client.force_login(registered_user("owner@example.com"))

    response = client.post(
        "/_allauth/browser/v1/auth/signup",
        {"email": "ada@example.com", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 409


def test_headless_signup_by_anonymous_visitor_creates_a_user(client: Client) -> None:
    response = client.post(
        "/_allauth/browser/v1/auth/signup",
        {"email": "ada@example.com", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert get_user_model().objects.get().email == "ada@example.com"


# Social login with the dummy provider


def social_login(client: Client, process: str = "login", **data: Any) -> Any:
    start = client.post("/accounts/dummy/login/", {"process": process})
    assert start.status_code == 302, start.content
    return client.post(start["Location"], data)


def test_social_login_attaches_account_and_upgrades_in_place(
    guest_browser: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        capture_signal(signals.guest_upgraded) as upgrades,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = social_login(
            guest_browser, id=1234, email="ada@example.com", email_verified="on", first_name="Ada"
        )

    assert response.status_code == 302, response.content
    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert user.first_name == "Ada"
    assert not user.get_username().startswith("guest-")  # named by allauth
    assert not user.has_usable_password()
    assert SocialAccount.objects.get(provider="dummy", uid="1234").user_id == user.pk
    assert EmailAddress.objects.get(user=user).verified  # the provider said so
    assert signed_in_as(guest_browser) == user.pk
    assert [(u["user"].pk, u["method"]) for u in upgrades] == [(user.pk, "social")]
    assert mail.outbox == []


def test_social_connect_by_a_guest_upgrades_in_place(guest_browser: Client) -> None:
    social_login(guest_browser, process="connect", id=77, email="ada@example.com")

    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert SocialAccount.objects.get(uid="77").user_id == user.pk
    assert signed_in_as(guest_browser) == user.pk
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]  # unverified: "optional" sends


@override_settings(SOCIALACCOUNT_EMAIL_REQUIRED=False)
def test_social_login_without_email_upgrades_in_place(guest_browser: Client) -> None:
    social_login(guest_browser, id=8, username="adalove")

    user = account(guest_browser)
    assert not is_guest(user)
    assert (user.email, user.get_username()) == ("", "adalove")  # the provider's username
    assert signed_in_as(guest_browser) == user.pk


def test_social_signup_page_without_a_pending_login(guest_browser: Client) -> None:
    response = guest_browser.get("/accounts/3rdparty/signup/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_headless_signup_closed(guest_browser: Client) -> None:
    # The adapter's is_open_for_signup() (recent allauth releases: ACCOUNT_SIGNUP_ENABLED).
    with mock.patch.object(AccountAdapter, "is_open_for_signup", return_value=False):
        response = guest_browser.post(
            "/_allauth/browser/v1/auth/signup",
            {"email": "ada@example.com", "password": PASSWORD},
            content_type="application/json",
        )

    assert response.status_code == 403
    assert is_guest(account(guest_browser))


@override_settings(SOCIALACCOUNT_EMAIL_REQUIRED=True)
def test_social_signup_form_is_open_to_guests(guest_browser: Client) -> None:
    response = social_login(guest_browser, id=55)  # the provider gives no email
    assert response["Location"] == "/accounts/3rdparty/signup/"
    assert guest_browser.get("/accounts/3rdparty/signup/").status_code == 200

    guest_browser.post("/accounts/3rdparty/signup/", {"email": "ada@example.com"})

    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert SocialAccount.objects.get(uid="55").user_id == user.pk
    assert signed_in_as(guest_browser) == user.pk


@override_settings(SOCIALACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_social_login_with_unverified_email_and_mandatory_verification(
    guest_browser: Client,
) -> None:
    social_login(guest_browser, id=9, email="ada@example.com")

    assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert signed_in_as(guest_browser) is None
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def assert_linked_into(client: Client, owner: Any) -> None:
    """The guest's basket now belongs to ``owner``; the guest is gone; no user was made."""
    assert signed_in_as(client) == owner.pk
    assert BasketItem.objects.get(basket__owner=owner).quantity == 2
    assert list(get_user_model().objects.values_list("pk", flat=True)) == [owner.pk]


def test_social_account_of_someone_else_links_the_guest_into_it(guest_browser: Client) -> None:
    owner = registered_user("owner@example.com")
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")

    response = social_login(guest_browser, id=999, email="owner@example.com")

    assert response.status_code == 302
    assert_linked_into(guest_browser, owner)
    assert SocialAccount.objects.get().user_id == owner.pk


def test_social_connect_with_someone_else_s_account_links_the_guest_into_it(
    guest_browser: Client,
) -> None:
    # A guest has no account to connect to: its "connect" signs in, like a login.
    owner = registered_user("owner@example.com")
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")

    response = social_login(guest_browser, process="connect", id=999, email="owner@example.com")

    assert response.status_code == 302
    assert_linked_into(guest_browser, owner)
    assert SocialAccount.objects.get().user_id == owner.pk


@pytest.mark.parametrize("existing", [True, False], ids=["someone-else-s", "new"])
def test_a_social_redirect_leaves_the_guest_alone(guest_browser: Client, existing: bool) -> None:
    # process="redirect" only authenticates with the provider: nobody signs in or up.
    if existing:
        owner = registered_user("owner@example.com")
        SocialAccount.objects.create(user=owner, provider="dummy", uid="999")

    response = social_login(guest_browser, process="redirect", id=999, email="owner@example.com")

    assert response.status_code == 302
    guest = account(guest_browser)
    assert is_guest(guest)
    assert signed_in_as(guest_browser) == guest.pk
    assert BasketItem.objects.get(basket__owner=guest).quantity == 2
    assert SocialAccount.objects.filter(user=guest).count() == 0


def test_a_failed_social_link_keeps_the_guest_and_the_login(
    guest_browser: Client, caplog: pytest.LogCaptureFixture
) -> None:
    owner = registered_user("owner@example.com")
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    with connected(signals.guest_linking, broken):
        social_login(guest_browser, id=999, email="owner@example.com")

    assert signed_in_as(guest_browser) == owner.pk  # the login went through
    guest = account(guest_browser)  # not deleted by allauth's sign-out either
    assert is_guest(guest)
    assert BasketItem.objects.get(basket__owner=guest).quantity == 2
    assert "receiver bug" in caplog.text


def test_password_login_links_the_guest(guest_browser: Client) -> None:
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()

    response = guest_browser.post(
        "/accounts/login/", {"login": "owner@example.com", "password": PASSWORD}
    )

    assert response.status_code == 302, response.content
    assert_linked_into(guest_browser, owner)


@override_settings(SOCIALACCOUNT_ONLY=True, ACCOUNT_EMAIL_VERIFICATION="none")
def test_password_login_is_refused_to_guests_too_with_socialaccount_only(
    guest_browser: Client,
) -> None:
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()

    response = guest_browser.post(
        "/accounts/login/", {"login": "owner@example.com", "password": PASSWORD}
    )

    assert response.status_code == 403  # as allauth answers anyone: social logins only
    assert signed_in_as(guest_browser) == guest_id(guest_browser)
    assert is_guest(account(guest_browser))


def test_headless_login_links_the_guest(guest_browser: Client) -> None:
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()

    response = guest_browser.post(
        "/_allauth/browser/v1/auth/login",
        {"email": "owner@example.com", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert_linked_into(guest_browser, owner)


def test_headless_login_still_refuses_registered_users(client: Client) -> None:
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()
    client.force_login(owner)
    response = client.post(
        "/_allauth/browser/v1/auth/login",
        {"email": "owner@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 409


@override_settings(ACCOUNT_LOGIN_BY_CODE_ENABLED=True)
def test_login_by_code_links_the_guest(guest_browser: Client) -> None:
    owner = registered_user("owner@example.com")

    requested = guest_browser.post("/accounts/login/code/", {"email": "owner@example.com"})
    assert requested.status_code == 302, requested.content
    confirmed = guest_browser.post(requested["Location"], {"code": mailed_code()})

    assert confirmed.status_code == 302, confirmed.content
    assert_linked_into(guest_browser, owner)


@override_settings(ACCOUNT_LOGIN_BY_CODE_ENABLED=True, ACCOUNT_LOGIN_BY_CODE_REQUIRED=True)
def test_signup_with_login_by_code_required_signs_in_after_the_code(
    guest_browser: Client,
) -> None:
    # allauth asks every login for a code first, a signup's too: so for the guest's.
    response = guest_browser.post(
        "/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/code/confirm/"
    user = assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert signed_in_as(guest_browser) is None  # not before the code
    confirmed = guest_browser.post(response["Location"], {"code": mailed_code()})
    assert confirmed.status_code == 302, confirmed.content
    assert signed_in_as(guest_browser) == user.pk
    assert guest_browser.session["basket_note"] == "gift wrap"


@override_settings(ACCOUNT_LOGIN_BY_CODE_ENABLED=True, ACCOUNT_LOGIN_BY_CODE_REQUIRED=True)
def test_headless_signup_with_login_by_code_required_waits_for_the_code(
    guest_browser: Client,
) -> None:
    response = guest_browser.post(
        "/_allauth/browser/v1/auth/signup",
        {"email": "ada@example.com", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 401, response.content  # pending: the code step
    pending = [f["id"] for f in response.json()["data"]["flows"] if f.get("is_pending")]
    assert pending == ["login_by_code"]
    assert_upgraded_in_place(guest_browser, "ada@example.com")
    assert signed_in_as(guest_browser) is None


def test_login_code_views_still_turn_registered_users_away(client: Client) -> None:
    client.force_login(registered_user("owner@example.com"))
    assert client.get("/accounts/login/code/").status_code == 302


@override_settings(ACCOUNT_ADAPTER="allauth.account.adapter.DefaultAccountAdapter")
def test_social_adapter_needs_the_account_adapter(guest_browser: Client) -> None:
    with pytest.raises(ImproperlyConfigured, match="ACCOUNT_ADAPTER"):
        social_login(guest_browser, id=1, email="ada@example.com")

    assert is_guest(account(guest_browser))


def test_registered_users_social_login_is_allauths(client: Client) -> None:
    create: Callable[..., Any] = social_login
    response = create(client, id=5, email="new@example.com", email_verified="on")

    assert response.status_code == 302
    user = get_user_model().objects.get()
    assert (user.email, is_guest(user)) == ("new@example.com", False)
    assert SocialAccount.objects.get().user_id == user.pk


# allauth headless app clients: no cookies, the session token in ``X-Session-Token``


def app_guest() -> tuple[Client, str, Any]:
    """An app client signed in as a guest (anonauth's sign-in) with a cart."""
    client = Client(HTTP_USER_AGENT="okhttp/4.12")
    response = client.post("/auth/anonymous/sign-in/")
    assert response.status_code == 201, response.content
    token = response.json()["session_token"]
    guest = get_user_model().objects.get(pk=response.json()["user"]["id"])
    basket = Basket.objects.create(owner=guest)
    BasketItem.objects.create(basket=basket, name="Teapot", quantity=2)
    return Client(HTTP_USER_AGENT="okhttp/4.12"), token, guest


def assert_app_linked_into(client: Client, response: Any, owner: Any, guest: Any) -> None:
    """allauth answered the account's new session token; the guest's data is the
    account's and the guest is gone."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["data"]["user"]["id"] == owner.pk
    new_token = body["meta"]["session_token"]
    session = client.get(SESSION_URL, HTTP_X_SESSION_TOKEN=new_token)
    assert session.json()["user"]["id"] == owner.pk
    assert BasketItem.objects.get(basket__owner=owner).quantity == 2
    assert not get_user_model().objects.filter(pk=guest.pk).exists()


def test_headless_app_login_links_the_guest() -> None:
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()
    client, token, guest = app_guest()

    response = client.post(
        "/_allauth/app/v1/auth/login",
        {"email": "owner@example.com", "password": PASSWORD},
        content_type="application/json",
        HTTP_X_SESSION_TOKEN=token,
    )

    assert_app_linked_into(client, response, owner, guest)


@override_settings(ACCOUNT_LOGIN_BY_CODE_ENABLED=True)
def test_headless_app_login_by_code_links_the_guest() -> None:
    owner = registered_user("owner@example.com")
    client, token, guest = app_guest()

    requested = client.post(
        "/_allauth/app/v1/auth/code/request",
        {"email": "owner@example.com"},
        content_type="application/json",
        HTTP_X_SESSION_TOKEN=token,
    )
    assert requested.status_code == 401, requested.content  # pending: the code step
    pending_token = requested.json()["meta"].get("session_token", token)  # unchanged
    response = client.post(
        "/_allauth/app/v1/auth/code/confirm",
        {"code": mailed_code()},
        content_type="application/json",
        HTTP_X_SESSION_TOKEN=pending_token,
    )

    assert_app_linked_into(client, response, owner, guest)


# Logout on GET (ACCOUNT_LOGOUT_ON_GET): signs the guest out, never deletes it


@override_settings(ACCOUNT_LOGOUT_ON_GET=True)
def test_a_get_logout_keeps_the_guest_and_its_data(guest_browser: Client) -> None:
    response = guest_browser.get("/accounts/logout/", HTTP_SEC_FETCH_SITE="cross-site")

    assert response.status_code == 302
    assert signed_in_as(guest_browser) is None
    guest = account(guest_browser)
    assert is_guest(guest)
    assert BasketItem.objects.get(basket__owner=guest).quantity == 2


@override_settings(ACCOUNT_LOGOUT_ON_GET=True)
def test_a_post_logout_still_deletes_the_guest(guest_browser: Client) -> None:
    guest_browser.post("/accounts/logout/")

    assert signed_in_as(guest_browser) is None
    assert not get_user_model().objects.filter(pk=guest_id(guest_browser)).exists()
    assert not BasketItem.objects.exists()


# A social login into an inactive account: no link, the guest and its data stay


def test_social_login_into_an_inactive_account_keeps_the_guest(guest_browser: Client) -> None:
    owner = registered_user("owner@example.com")
    owner.is_active = False
    owner.save()
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")

    with capture_signal(signals.guest_linked) as links:
        response = social_login(guest_browser, id=999, email="owner@example.com")

    assert response.status_code == 302
    assert "inactive" in response["Location"]
    guest = account(guest_browser)
    assert is_guest(guest)
    assert BasketItem.objects.get(basket__owner=guest).quantity == 2
    assert not BasketItem.objects.filter(basket__owner=owner).exists()
    assert signed_in_as(guest_browser) == guest.pk  # still the guest: nobody signed in
    assert links == []


# link/ counts failed passwords with allauth's login_failed limit, shared with its form

LINK_URL = "/auth/anonymous/link/"


def wrong_allauth_logins(email: str, times: int) -> list[int]:
    return [
        Client()
        .post(
            "/accounts/login/",
            {"login": email, "password": "guess"},
            REMOTE_ADDR=f"198.51.100.{n}",
        )
        .status_code
        for n in range(times)
    ]


@override_settings(ANONAUTH_LINK_RATE_LIMIT="100/m")  # only allauth's limit applies
def test_failures_on_allauth_s_login_form_count_for_link(guest_browser: Client) -> None:
    owner = registered_user("owner@example.com")
    assert wrong_allauth_logins("owner@example.com", 5) == [200] * 5

    response = guest_browser.post(
        LINK_URL, {"login": "owner@example.com", "password": "x"}, REMOTE_ADDR="192.0.2.1"
    )

    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
    assert is_guest(account(guest_browser))
    assert not BasketItem.objects.filter(basket__owner=owner).exists()


@override_settings(ANONAUTH_LINK_RATE_LIMIT="100/m")
def test_failures_on_link_count_for_allauth_s_login_form(guest_browser: Client) -> None:
    registered_user("owner@example.com")
    codes = [
        guest_browser.post(
            LINK_URL,
            {"login": "owner@example.com", "password": "guess"},
            REMOTE_ADDR=f"192.0.2.{n}",
        ).status_code
        for n in range(6)
    ]
    assert codes == [400] * 5 + [429]

    response = Client().post(
        "/accounts/login/", {"login": "owner@example.com", "password": "x"}, REMOTE_ADDR="192.0.2.9"
    )
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()


def test_the_login_failed_key_is_allauth_s_even_without_its_adapter_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from allauth.account.adapter import DefaultAccountAdapter, get_adapter
    from django.test import RequestFactory

    from anonauth.link import _allauth_login_key

    request = RequestFactory().post(LINK_URL)
    expected = get_adapter(request)._get_login_attempts_cache_key(request, email="o@example.com")
    assert _allauth_login_key(request, "o@example.com") == expected
    monkeypatch.delattr(DefaultAccountAdapter, "_get_login_attempts_cache_key")
    assert _allauth_login_key(request, "o@example.com") == expected


@override_settings(ANONAUTH_LINK_RATE_LIMIT="100/m", ACCOUNT_RATE_LIMITS=False)
def test_without_allauth_s_rate_limits_link_keeps_its_own(guest_browser: Client) -> None:
    registered_user("owner@example.com")
    codes = {
        guest_browser.post(
            LINK_URL,
            {"login": "owner@example.com", "password": "guess"},
            REMOTE_ADDR=f"192.0.2.{n}",
        ).status_code
        for n in range(7)
    }
    assert codes == {400}


# The API upgrade goes through allauth's email machinery


def api_upgrade(client: Client, email: str) -> Any:
    return client.post(
        "/auth/anonymous/upgrade/",
        {"email": email, "password": PASSWORD},
        content_type="application/json",
    )


@pytest.mark.parametrize(
    ("verification", "mails"), [("optional", 1), ("mandatory", 1), ("none", 0)]
)
def test_api_upgrade_registers_the_address_with_allauth(
    guest_browser: Client,
    verification: str,
    mails: int,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with (
        override_settings(ACCOUNT_EMAIL_VERIFICATION=verification),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_upgrade(guest_browser, "ada@example.com")
    assert response.status_code == 200, response.content
    address = EmailAddress.objects.get(user_id=guest_id(guest_browser))
    assert (address.email, address.primary, address.verified) == ("ada@example.com", True, False)
    assert len(mail.outbox) == mails
    if mails:
        assert mail.outbox[0].to == ["ada@example.com"]
    still_signed_in = signed_in_as(guest_browser) == guest_id(guest_browser)
    assert still_signed_in is (verification != "mandatory")


# Every allauth path hands the upgrade and link receivers the guest's metadata

METADATA = {"campaign": "spring"}


@pytest.fixture
def tagged_guest(guest_browser: Client) -> Client:
    from anonauth.models import Guest

    Guest.objects.filter(user_id=guest_id(guest_browser)).update(metadata=METADATA)
    return guest_browser


def test_signup_hands_the_metadata_over(
    tagged_guest: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        capture_signal(signals.guest_upgraded) as upgrades,
        django_capture_on_commit_callbacks(execute=True),
    ):
        tagged_guest.post("/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD})
    assert [(u["method"], u["metadata"]) for u in upgrades] == [("password", METADATA)]


def test_social_signup_hands_the_metadata_over(
    tagged_guest: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        capture_signal(signals.guest_upgraded) as upgrades,
        django_capture_on_commit_callbacks(execute=True),
    ):
        social_login(tagged_guest, id=1234, email="ada@example.com", email_verified="on")
    assert [(u["method"], u["metadata"]) for u in upgrades] == [("social", METADATA)]


def test_social_login_link_hands_the_metadata_over(
    tagged_guest: Client, django_capture_on_commit_callbacks: Any
) -> None:
    owner = registered_user("owner@example.com")
    SocialAccount.objects.create(user=owner, provider="dummy", uid="999")
    with (
        capture_signal(signals.guest_linking) as linking,
        capture_signal(signals.guest_linked) as linked,
        django_capture_on_commit_callbacks(execute=True),
    ):
        social_login(tagged_guest, id=999, email="owner@example.com")
    assert_linked_into(tagged_guest, owner)
    assert [call["metadata"] for call in linking + linked] == [METADATA] * 2


def test_password_login_link_hands_the_metadata_over(
    tagged_guest: Client, django_capture_on_commit_callbacks: Any
) -> None:
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()
    with (
        capture_signal(signals.guest_linking) as linking,
        capture_signal(signals.guest_linked) as linked,
        django_capture_on_commit_callbacks(execute=True),
    ):
        tagged_guest.post("/accounts/login/", {"login": "owner@example.com", "password": PASSWORD})
    assert_linked_into(tagged_guest, owner)
    assert [call["metadata"] for call in linking + linked] == [METADATA] * 2


def test_headless_app_login_link_hands_the_metadata_over(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The metadata an app client signed in with (anonauth's ``sign-in/``) reaches the
    link receivers when the app logs into an account through allauth headless."""
    owner = registered_user("owner@example.com")
    owner.set_password(PASSWORD)
    owner.save()
    client = Client(HTTP_USER_AGENT="okhttp/4.12")
    signed_in = client.post(
        "/auth/anonymous/sign-in/", {"metadata": METADATA}, content_type="application/json"
    )
    assert signed_in.status_code == 201, signed_in.content
    assert signed_in.json()["user"]["metadata"] == METADATA
    with (
        capture_signal(signals.guest_linking) as linking,
        capture_signal(signals.guest_linked) as linked,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            "/_allauth/app/v1/auth/login",
            {"email": "owner@example.com", "password": PASSWORD},
            content_type="application/json",
            HTTP_X_SESSION_TOKEN=signed_in.json()["session_token"],
        )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["user"]["id"] == owner.pk
    assert [call["metadata"] for call in linking + linked] == [METADATA] * 2
