"""``anonauth.conf``: each setting's default, the project's value, always read live."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from anonauth.conf import DEFAULT_BLOCKED_USER_AGENTS, DEFAULT_LINK_EXCLUDE, Settings, conf

DEFAULTS: dict[str, Any] = {
    "ENABLED": True,
    "BLOCKED_USER_AGENTS": DEFAULT_BLOCKED_USER_AGENTS,
    "REQUIRE_COOKIE": True,
    "RATE_LIMIT": "30/m",
    "CAPTCHA_VERIFIER": None,
    "SESSION_AGE": 30 * 24 * 3600,
    "TOUCH_INTERVAL": 3600,
    "MAX_AGE": timedelta(days=30),
    "EMAIL_DOMAIN": "guest.invalid",
    "USERNAME_GENERATOR": "anonauth.guests.generate_username",
    "DELETE_ON_LOGOUT": True,
    "REGISTER_URL": None,
    "LINK_REASSIGN": "all",
    "LINK_EXCLUDE": DEFAULT_LINK_EXCLUDE,
    "LINK_CONFLICTS": {},
    "LINK_DELETE_GUEST": True,
    "LINK_RATE_LIMIT": "5/m",
    "UPGRADE_RATE_LIMIT": "10/h",
    "TRANSFER_CODE_AGE": 600,
    "TRANSFER_RATE_LIMIT": "10/h",
    "TRANSFER_REDEEM_RATE_LIMIT": "10/m",
    "TRANSFER_ENDS_FIRST_SESSION": False,
    "PROBE_COOKIE_NAME": "anonauth",
    "TRUSTED_PROXIES": 0,
    "PURGE_SPARE": None,
    "PURGE_BATCH_SIZE": 2000,
    "PURGE_LOCK_TIMEOUT": 600,
    "PURGE_SHARDS": 1,
    "AUDIT": True,
    "BEFORE_CREATE": None,
    "LIVE_GUEST_CAP": None,
    "EXPORT_SERIALIZERS": {},
    "EXPORT_RATE_LIMIT": "10/h",
    "METRICS": False,
    "METADATA_MAX_BYTES": 1024,
    "METADATA_MAX_DEPTH": 3,
    "EMAIL_GENERATOR": "anonauth.guests.generate_email",
}

# A project's value for each setting, unlike its default.
PROJECT_VALUES: dict[str, Any] = {
    "ENABLED": False,
    "BLOCKED_USER_AGENTS": [r"firefox"],
    "REQUIRE_COOKIE": False,
    "RATE_LIMIT": "5/h",
    "CAPTCHA_VERIFIER": "tests.testapp.captcha.verify",
    "SESSION_AGE": 600,
    "TOUCH_INTERVAL": 30,
    "MAX_AGE": timedelta(days=7),
    "EMAIL_DOMAIN": "guests.example.com",
    "USERNAME_GENERATOR": "tests.testapp.captcha.scripted_username",
    "DELETE_ON_LOGOUT": False,
    "REGISTER_URL": "/signup/",
    "LINK_REASSIGN": ["linkapp.Note.author"],
    "LINK_EXCLUDE": ["linkapp.Draft.editor"],
    "LINK_CONFLICTS": {"linkapp.Profile.user": "error"},
    "LINK_DELETE_GUEST": False,
    "LINK_RATE_LIMIT": None,
    "UPGRADE_RATE_LIMIT": "2/m",
    "TRANSFER_CODE_AGE": 120,
    "TRANSFER_RATE_LIMIT": "3/h",
    "TRANSFER_REDEEM_RATE_LIMIT": None,
    "TRANSFER_ENDS_FIRST_SESSION": True,
    "PROBE_COOKIE_NAME": "__Host-probe",
    "TRUSTED_PROXIES": 2,
    "PURGE_SPARE": "tests.purge_helpers.exists",
    "PURGE_BATCH_SIZE": 10,
    "PURGE_LOCK_TIMEOUT": 60,
    "PURGE_SHARDS": 4,
    "AUDIT": False,
    "BEFORE_CREATE": "tests.testapp.policy_hooks.refuse_beta",
    "LIVE_GUEST_CAP": 5,
    "EXPORT_SERIALIZERS": {"linkapp.Note": "tests.test_export.note_as_text"},
    "EXPORT_RATE_LIMIT": "1/d",
    "METRICS": "auto",
    "METADATA_MAX_BYTES": 4096,
    "METADATA_MAX_DEPTH": 1,
    "EMAIL_GENERATOR": "tests.testapp.generators.tenant_email",
}

NAMES = sorted(name for name, value in vars(Settings).items() if isinstance(value, property))


def test_every_setting_is_covered_here() -> None:
    assert sorted(DEFAULTS) == NAMES
    assert sorted(PROJECT_VALUES) == NAMES


@pytest.fixture
def unset(settings: Any) -> None:
    """No ``ANONAUTH_*`` setting in the project (pytest-django restores them after)."""
    for name in NAMES:
        if hasattr(settings, f"ANONAUTH_{name}"):
            delattr(settings, f"ANONAUTH_{name}")


@pytest.mark.usefixtures("unset")
@pytest.mark.parametrize("name", NAMES)
def test_default_when_unset(name: str) -> None:
    assert getattr(conf, name) == DEFAULTS[name]
    assert not hasattr(django_settings, f"ANONAUTH_{name}")  # nothing written back


@pytest.mark.parametrize("name", NAMES)
def test_the_projects_value(name: str) -> None:
    with override_settings(**{f"ANONAUTH_{name}": PROJECT_VALUES[name]}):
        assert getattr(conf, name) == PROJECT_VALUES[name]


@pytest.mark.usefixtures("unset")
@pytest.mark.parametrize("name", NAMES)
def test_read_live(name: str) -> None:
    """The same object answers the default, the override, then the default again."""
    assert getattr(conf, name) == DEFAULTS[name]
    with override_settings(**{f"ANONAUTH_{name}": PROJECT_VALUES[name]}):
        assert getattr(conf, name) == PROJECT_VALUES[name]
    assert getattr(conf, name) == DEFAULTS[name]


def test_max_age_in_seconds_is_a_timedelta() -> None:
    with override_settings(ANONAUTH_MAX_AGE=3600):
        assert timedelta(hours=1) == conf.MAX_AGE


def test_a_new_settings_object_reads_the_same() -> None:
    with override_settings(ANONAUTH_RATE_LIMIT="1/s"):
        assert Settings().RATE_LIMIT == conf.RATE_LIMIT == "1/s"
