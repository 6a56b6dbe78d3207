"""Guests under a custom user model keyed by email with no username field.

Runs under ``tests.settings_email_user`` (``make test`` does so); elsewhere it skips.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError
from django.test import Client

from anonauth.guests import USERNAME_ATTEMPTS, create_guest, is_guest
from anonauth.models import Guest
from tests.testapp import generators

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        settings.AUTH_USER_MODEL != "emailuser.EmailUser",
        reason="runs with --ds=tests.settings_email_user",
    ),
]


def test_guests_get_a_synthetic_reserved_address() -> None:
    user = create_guest()
    assert is_guest(user)
    local, domain = user.email.split("@")
    assert domain == "guest.invalid"
    assert local.startswith("guest-")
    assert not hasattr(get_user_model(), "username")


def test_lazy_creation_through_the_middleware(browser: Client) -> None:
    body = browser.get("/guest-fn/").json()
    assert body["is_guest"]
    assert get_user_model().objects.get(pk=body["id"]).email.endswith("@guest.invalid")


def test_email_domain_setting(settings: object) -> None:
    settings.ANONAUTH_EMAIL_DOMAIN = "guests.example.invalid"  # type: ignore[attr-defined]
    assert create_guest().email.endswith("@guests.example.invalid")


# ANONAUTH_EMAIL_GENERATOR

SCRIPTED = "tests.testapp.generators.scripted_email"


@pytest.fixture
def scripted(settings: Any) -> list[Any]:
    settings.ANONAUTH_EMAIL_GENERATOR = SCRIPTED
    generators.EMAILS.clear()
    generators.CALLS.clear()
    return generators.EMAILS


def test_a_projects_generator_names_the_guests(settings: Any) -> None:
    settings.ANONAUTH_EMAIL_GENERATOR = "tests.testapp.generators.tenant_email"
    assert create_guest().email == "visitor-1@shop.guest.invalid"
    assert create_guest().email == "visitor-2@shop.guest.invalid"


def test_the_generator_gets_the_fields_max_length(scripted: list[Any]) -> None:
    scripted.append("a@guest.invalid")
    create_guest()
    field = get_user_model()._meta.get_field("email")
    assert generators.CALLS == [field.max_length] == [254]


def test_a_collision_is_retried_with_a_fresh_address(scripted: list[Any]) -> None:
    scripted[:] = ["one@guest.invalid", "one@guest.invalid", "two@guest.invalid"]
    assert create_guest().email == "one@guest.invalid"
    assert create_guest().email == "two@guest.invalid"
    assert scripted == []


def test_a_generator_that_always_collides_gives_up(scripted: list[Any]) -> None:
    scripted[:] = ["same@guest.invalid"] * (1 + USERNAME_ATTEMPTS)
    create_guest()
    with pytest.raises(IntegrityError):
        create_guest()
    assert get_user_model().objects.count() == Guest.objects.count() == 1


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        (None, "which is not an address"),
        ("", "which is not an address"),
        (42, "which is not an address"),
        ("not an address", "which is not a valid address"),
        ("x" * 250 + "@guest.invalid", "which is longer than 254 characters"),
        ("ada@example.com", "which is not under ANONAUTH_EMAIL_DOMAIN ('guest.invalid')"),
        ("ada@notguest.invalid", "which is not under ANONAUTH_EMAIL_DOMAIN"),
    ],
)
def test_garbage_is_a_clear_error_and_creates_nothing(
    scripted: list[Any], returned: Any, problem: str
) -> None:
    scripted.append(returned)
    with pytest.raises(ImproperlyConfigured, match="ANONAUTH_EMAIL_GENERATOR returned") as error:
        create_guest()
    assert problem in str(error.value)
    assert not get_user_model().objects.exists()


def test_the_lazy_path_stays_anonymous_when_the_generator_is_broken(
    scripted: list[Any], browser: Client
) -> None:
    scripted.append("ada@example.com")
    with pytest.raises(ImproperlyConfigured):  # a misconfiguration, not a refusal
        browser.get("/guest-fn/")
    assert not Guest.objects.exists()


def test_the_example_shops_generator(settings: Any) -> None:
    settings.ANONAUTH_EMAIL_GENERATOR = "example_project.shop.policy.guest_email"
    local, _, domain = create_guest().email.partition("@")
    assert domain == "shop.guest.invalid"
    assert local.startswith("shopper-")
