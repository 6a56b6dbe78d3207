"""Guests under a custom user model keyed by email with no username field.

Runs under ``tests.settings_email_user`` (``make test`` does so); elsewhere it skips.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from anonauth.guests import create_guest, is_guest

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
