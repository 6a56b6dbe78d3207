"""Upgrade in place: ``anonauth.upgrade`` and ``POST auth/anonymous/upgrade/``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.db import IntegrityError
from django.db.models.signals import post_save, pre_save
from django.test import Client, override_settings

from anonauth import signals
from anonauth.exceptions import (
    EmailInUse,
    InvalidEmail,
    NotGuest,
    PasswordInvalid,
    UsernameInUse,
)
from anonauth.guests import create_guest, is_guest
from anonauth.models import Guest
from anonauth.sessions import SEEN_SESSION_KEY
from anonauth.test import capture_signal, connected, guest_client, make_registered_user
from anonauth.upgrade import upgrade_guest
from tests.testapp.models import Basket, BasketItem

pytestmark = pytest.mark.django_db

UPGRADE_URL = "/auth/anonymous/upgrade/"
PASSWORD = "correct horse battery staple"
ARGON2_FIRST = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
STRICT_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]


def fresh(user: Any) -> Any:
    return get_user_model().objects.get(pk=user.pk)


def guest_with_basket() -> tuple[Any, Basket]:
    guest = create_guest()
    basket = Basket.objects.create(owner=guest)
    BasketItem.objects.create(basket=basket, name="Teapot", quantity=2)
    return guest, basket


def email_of(user: Any) -> str:
    return str(getattr(user, user.get_email_field_name()))


# The core: upgrade_guest()


def test_upgrade_keeps_primary_key_and_related_rows() -> None:
    guest, basket = guest_with_basket()

    user = upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    assert user.pk == guest.pk
    stored = fresh(guest)
    assert not is_guest(stored)
    assert not Guest.objects.filter(user_id=guest.pk).exists()
    assert email_of(stored) == "ada@example.com"
    assert stored.check_password(PASSWORD)
    assert Basket.objects.get(pk=basket.pk).owner_id == guest.pk
    assert BasketItem.objects.get(basket=basket).quantity == 2


def test_instance_is_no_longer_a_guest_without_a_query(
    django_assert_num_queries: Any,
) -> None:
    guest = create_guest()
    assert is_guest(guest)

    upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    with django_assert_num_queries(0):
        assert not is_guest(guest)


def test_queries_do_not_grow_with_the_guests_data() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    light = create_guest()
    heavy, basket = guest_with_basket()
    for number in range(20):
        BasketItem.objects.create(basket=basket, name=f"Cup {number}")

    counts = []
    for index, guest in enumerate([light, heavy]):
        with CaptureQueriesContext(connection) as queries:
            upgrade_guest(guest, email=f"user{index}@example.com", password=PASSWORD)
        counts.append(len(queries))

    assert counts[0] == counts[1]
    # the email pre-check (before the hash); then, locked: the user row, the Guest row,
    # unflag (the Guest row goes through Django's collector since transfer codes cascade
    # from it: the row is selected and its codes deleted first, indexed queries),
    # update, (advisory lock,) the email check; savepoints
    assert counts[0] <= 11


def test_email_is_normalized() -> None:
    guest = create_guest()

    upgrade_guest(guest, email="  Ada@EXAMPLE.com ", password=PASSWORD)

    assert email_of(fresh(guest)) == "Ada@example.com"


@override_settings(PASSWORD_HASHERS=ARGON2_FIRST)
def test_password_hashed_with_first_hasher() -> None:
    guest = create_guest()

    upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    stored = fresh(guest)
    assert stored.password.startswith("argon2$")
    assert stored.check_password(PASSWORD)


@pytest.mark.auth_user_only  # the email-keyed model has no username field
def test_random_username_is_kept_unless_given() -> None:
    kept = create_guest()
    renamed = create_guest()
    random_name = kept.get_username()

    upgrade_guest(kept, email="kept@example.com", password=PASSWORD)
    upgrade_guest(renamed, email="ada@example.com", password=PASSWORD, username="ada")

    assert fresh(kept).get_username() == random_name
    assert fresh(renamed).get_username() == "ada"


@pytest.mark.auth_user_only  # the email-keyed model has no username field
def test_username_in_use_is_refused_case_insensitively() -> None:
    get_user_model().objects.create_user(username="Ada", password="x")
    guest = create_guest()

    with pytest.raises(UsernameInUse):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD, username="ada")

    assert is_guest(fresh(guest))


@pytest.mark.auth_user_only  # the email-keyed model has no first_name field
def test_extra_fields_are_set() -> None:
    guest = create_guest()

    upgrade_guest(guest, email="ada@example.com", password=PASSWORD, first_name="Ada")

    assert fresh(guest).first_name == "Ada"


@pytest.mark.parametrize("name", ["password", "id", "is_staff", "no_such_field"])
def test_fields_upgrade_guest_owns_are_refused(name: str) -> None:
    guest = create_guest()

    with pytest.raises(TypeError, match=name):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD, **{name: "x"})

    assert is_guest(fresh(guest))


@pytest.mark.parametrize(
    "email",
    ["", "not-an-email", "ada@", "ada@exa mple.com", "x@guest.invalid", "x@a.guest.invalid"],
)
def test_malformed_email_is_refused(email: str) -> None:
    guest = create_guest()
    before = email_of(fresh(guest))

    with pytest.raises(InvalidEmail) as caught:
        upgrade_guest(guest, email=email, password=PASSWORD)

    assert caught.value.code == "invalid_email"
    assert is_guest(fresh(guest))
    assert email_of(fresh(guest)) == before


def test_email_longer_than_the_field_is_refused() -> None:
    guest = create_guest()

    with pytest.raises(InvalidEmail, match="at most"):
        upgrade_guest(guest, email=f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 60}.com", password="p")


def test_email_in_use_is_refused_case_insensitively() -> None:
    make_registered_user("ada@example.com")
    guest = create_guest()
    before = email_of(guest)

    with pytest.raises(EmailInUse) as caught:
        upgrade_guest(guest, email="ADA@Example.COM", password=PASSWORD)

    assert caught.value.code == "email_in_use"
    stored = fresh(guest)
    assert is_guest(stored)
    assert email_of(stored) == before
    assert email_of(guest) == before  # the instance is put back too
    assert not stored.has_usable_password()


def test_exact_email_in_use_is_refused() -> None:
    """On the email-keyed model the unique constraint answers first (IntegrityError)."""
    make_registered_user("ada@example.com")
    guest = create_guest()

    with pytest.raises(EmailInUse):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    assert is_guest(fresh(guest))


def test_integrity_error_of_unknown_cause_propagates() -> None:
    guest = create_guest()
    model = get_user_model()
    identity = model.USERNAME_FIELD

    def clash(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.pk == guest.pk:  # a row the upgrade cannot know about, gone on rollback
            model.objects.create(**{identity: getattr(instance, identity), "password": "!"})

    with connected(pre_save, clash, sender=model), pytest.raises(IntegrityError):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    assert is_guest(fresh(guest))
    assert model.objects.count() == 1


@override_settings(AUTH_PASSWORD_VALIDATORS=STRICT_VALIDATORS)
def test_password_validators_messages_are_carried() -> None:
    guest = create_guest()

    with pytest.raises(PasswordInvalid) as caught:
        upgrade_guest(guest, email="ada@example.com", password="1234")

    assert caught.value.code == "password_invalid"
    assert len(caught.value.messages) == 2
    assert any("too short" in message for message in caught.value.messages)
    assert any("entirely numeric" in message for message in caught.value.messages)
    assert is_guest(fresh(guest))


@override_settings(AUTH_PASSWORD_VALIDATORS=STRICT_VALIDATORS)
def test_password_compared_with_the_new_email() -> None:
    guest = create_guest()

    with pytest.raises(PasswordInvalid, match="too similar"):
        upgrade_guest(guest, email="margaretha@example.com", password="margaretha")


def test_empty_password_is_refused() -> None:
    guest = create_guest()

    with pytest.raises(PasswordInvalid):
        upgrade_guest(guest, email="ada@example.com", password="")


def test_registered_user_is_not_a_guest() -> None:
    user = make_registered_user("ada@example.com")

    with pytest.raises(NotGuest):
        upgrade_guest(user, email="other@example.com", password=PASSWORD)

    assert email_of(fresh(user)) == "ada@example.com"


def test_stale_instance_of_an_upgraded_guest_is_not_a_guest() -> None:
    guest = create_guest()
    stale = fresh(guest)
    assert is_guest(stale)  # caches the flag on this instance
    upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    with pytest.raises(NotGuest):
        upgrade_guest(stale, email="other@example.com", password=PASSWORD)

    assert email_of(fresh(guest)) == "ada@example.com"


def test_guest_upgraded_sent_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    guest = create_guest()

    with (
        capture_signal(signals.guest_upgraded) as calls,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD)
        assert calls == []  # not before commit

    assert len(callbacks) == 1
    assert calls == [
        {
            "sender": get_user_model(),
            "signal": signals.guest_upgraded,
            "user": guest,
            "request": None,
            "method": "password",
            "metadata": {},
        }
    ]


def test_receiver_error_after_commit_keeps_upgrade_and_is_logged(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    guest = create_guest()

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver failed")

    with (
        connected(signals.guest_upgraded, broken),
        django_capture_on_commit_callbacks(execute=True),
        caplog.at_level(logging.ERROR, logger="anonauth"),
    ):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    assert not is_guest(fresh(guest))
    assert email_of(fresh(guest)) == "ada@example.com"
    assert "receiver failed" in caplog.text


def test_error_before_commit_rolls_everything_back(
    django_capture_on_commit_callbacks: Any,
) -> None:
    guest, basket = guest_with_basket()
    before = email_of(guest)

    def broken(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.pk == guest.pk:
            raise RuntimeError("post_save failed")

    with (
        connected(post_save, broken, sender=get_user_model()),
        capture_signal(signals.guest_upgraded) as upgraded,
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
    ):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD)

    stored = fresh(guest)
    assert is_guest(stored)
    assert is_guest(guest)  # the instance asks the database again
    assert email_of(stored) == before
    assert not stored.has_usable_password()
    assert Basket.objects.get(pk=basket.pk).owner_id == guest.pk
    assert upgraded == []


def test_upgrade_by_someone_else_leaves_their_session_alone(rf: Any) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    admin = make_registered_user("admin@example.com")
    request = rf.post("/")
    request.session = SessionStore()
    request.session["_auth_user_id"] = str(admin.pk)
    request.session.save()
    request.user = admin
    key = request.session.session_key
    guest = create_guest()

    upgrade_guest(guest, email="ada@example.com", password=PASSWORD, request=request)

    assert request.session.session_key == key
    assert request.user == admin
    assert not is_guest(fresh(guest))


# The API: POST auth/anonymous/upgrade/


def sign_in_browser(client: Client) -> int:
    response = client.post("/auth/anonymous/sign-in/")
    assert response.status_code == 201
    return int(response.json()["user"]["id"])


def test_api_upgrades_in_place_and_keeps_the_session(browser: Client) -> None:
    user_id = sign_in_browser(browser)
    session = browser.session
    session["basket_note"] = "gift wrap"
    session.save()
    old_key = session.session_key
    browser.get("/session-touch/")

    response = browser.post(UPGRADE_URL, {"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["user"]["id"] == user_id
    assert body["user"]["is_guest"] is False
    assert body["user"]["email"] == "ada@example.com"
    assert body["session_token"] is None  # a cookie client keeps its cookie
    new_session = browser.session
    assert new_session.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert new_session["basket_note"] == "gift wrap"
    assert SEEN_SESSION_KEY not in new_session
    assert "_session_expiry" not in new_session
    assert new_session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert new_session[HASH_SESSION_KEY] == fresh_by_id(user_id).get_session_auth_hash()
    after = browser.get("/auth/anonymous/session/").json()
    assert after["user"] == {**body["user"]}  # still signed in, as the account


def fresh_by_id(user_id: int) -> Any:
    return get_user_model().objects.get(pk=user_id)


def test_api_rotates_the_csrf_token() -> None:
    client = guest_client(Client(enforce_csrf_checks=True))  # holds a CSRF cookie
    old_token = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post(
        UPGRADE_URL,
        {"email": "ada@example.com", "password": PASSWORD},
        HTTP_X_CSRFTOKEN=old_token,
    )

    assert response.status_code == 200, response.content
    assert response.cookies[settings.CSRF_COOKIE_NAME].value not in ("", old_token)


def test_api_enforces_csrf_for_cookie_clients() -> None:
    client = guest_client(Client(enforce_csrf_checks=True))  # holds a CSRF cookie
    user_id = int(client.session["_auth_user_id"])

    response = client.post(UPGRADE_URL, {"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert is_guest(fresh_by_id(user_id))


def test_api_token_client_gets_the_new_session_token() -> None:
    app = Client(HTTP_USER_AGENT="shop-app/1.0")
    token = app.post("/auth/anonymous/sign-in/").json()["session_token"]
    assert token

    response = app.post(
        UPGRADE_URL,
        {"email": "ada@example.com", "password": PASSWORD},
        HTTP_X_SESSION_TOKEN=token,
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    new_token = response.json()["session_token"]
    assert new_token not in (None, token)
    session = app.get("/auth/anonymous/session/", HTTP_X_SESSION_TOKEN=new_token)
    assert session.json()["user"]["is_guest"] is False
    old = app.get("/auth/anonymous/session/", HTTP_X_SESSION_TOKEN=token)
    assert old.status_code == 401


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"email": "nope", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": "taken@example.com", "password": PASSWORD}, 409, "email_in_use"),
        ({"email": "ada@example.com"}, 400, "invalid"),
        ({"password": PASSWORD}, 400, "invalid"),
    ],
)
def test_api_errors(browser: Client, payload: dict[str, str], status: int, code: str) -> None:
    make_registered_user("taken@example.com")
    user_id = sign_in_browser(browser)

    response = browser.post(UPGRADE_URL, payload)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert is_guest(fresh_by_id(user_id))


@override_settings(AUTH_PASSWORD_VALIDATORS=STRICT_VALIDATORS)
def test_api_password_invalid_lists_the_messages(browser: Client) -> None:
    sign_in_browser(browser)

    response = browser.post(UPGRADE_URL, {"email": "ada@example.com", "password": "1234"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "password_invalid"
    assert isinstance(body["detail"], list)
    assert len(body["detail"]) == 2


def test_api_anonymous_visitor_gets_401() -> None:
    response = Client().post(UPGRADE_URL, {"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_api_registered_user_gets_403_not_guest(client: Client) -> None:
    user = make_registered_user("ada@example.com")
    client.force_login(user)

    response = client.post(UPGRADE_URL, {"email": "new@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert response.json()["code"] == "not_guest"
    assert email_of(fresh(user)) == "ada@example.com"


def test_api_second_upgrade_is_refused(browser: Client) -> None:
    sign_in_browser(browser)
    browser.post(UPGRADE_URL, {"email": "ada@example.com", "password": PASSWORD})

    response = browser.post(UPGRADE_URL, {"email": "bob@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert response.json()["code"] == "not_guest"


class ReadReplicaRouter:
    """A project's router that sends reads of users and addresses to a replica (which
    lags behind the primary); it records which models it was asked to read."""

    asked: list[str] = []

    def db_for_read(self, model: Any, **hints: Any) -> None:
        if model._meta.label in {settings.AUTH_USER_MODEL, "account.EmailAddress"}:
            self.asked.append(model._meta.label)


@override_settings(DATABASE_ROUTERS=[f"{__name__}.ReadReplicaRouter"])
def test_uniqueness_is_checked_on_the_primary_not_a_replica() -> None:
    # A replica a moment behind would not have the account that just took the address.
    make_registered_user("ada@example.com")
    guest = create_guest()
    ReadReplicaRouter.asked.clear()

    with pytest.raises(EmailInUse):
        upgrade_guest(guest, email="ada@example.com", password=PASSWORD)
    kwargs = {"username": "grace"} if settings.AUTH_USER_MODEL == "auth.User" else {}
    upgrade_guest(guest, email="grace@example.com", password=PASSWORD, **kwargs)

    assert ReadReplicaRouter.asked == []
    assert not is_guest(fresh(guest))
