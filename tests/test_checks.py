from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from anonauth import checks
from anonauth.checks import check_settings

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "anonauth.middleware.GuestMiddleware",
]


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


class TestMiddleware:
    def test_good_order(self) -> None:
        with override_settings(MIDDLEWARE=MIDDLEWARE):
            assert checks.check_middleware() == []

    def test_e001_before_authentication(self) -> None:
        wrong = [MIDDLEWARE[0], MIDDLEWARE[1], MIDDLEWARE[3], MIDDLEWARE[2]]
        with override_settings(MIDDLEWARE=wrong):
            [error] = checks.check_middleware()
        assert error.id == "anonauth.E001"
        assert "must come after" in error.msg

    def test_e001_without_authentication(self) -> None:
        with override_settings(MIDDLEWARE=[MIDDLEWARE[0], MIDDLEWARE[3]]):
            assert ids(checks.check_middleware()) == ["anonauth.E001"]

    def test_e002_sessions_missing(self) -> None:
        apps = [app for app in settings.INSTALLED_APPS if app != "django.contrib.sessions"]
        with override_settings(MIDDLEWARE=MIDDLEWARE, INSTALLED_APPS=apps):
            assert ids(checks.check_middleware()) == ["anonauth.E002"]

    def test_w001_middleware_missing(self) -> None:
        with override_settings(MIDDLEWARE=MIDDLEWARE[:3]):
            assert ids(checks.check_middleware()) == ["anonauth.W001"]


class TestCaches:
    def test_w002_local_memory_cache(self) -> None:
        assert ids(checks.check_caches()) == ["anonauth.W002"]

    @override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/0",
            }
        }
    )
    def test_shared_cache(self) -> None:
        assert checks.check_caches() == []

    @override_settings(ANONAUTH_RATE_LIMIT=None)
    def test_no_rate_limit_no_warning(self) -> None:
        assert checks.check_caches() == []


class TestSecurity:
    def test_w003_argon2_not_first(self) -> None:
        assert ids(checks.check_security()) == ["anonauth.W003"]

    @override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.Argon2PasswordHasher"])
    def test_argon2_first(self) -> None:
        assert checks.check_security() == []


class TestSettings:
    def test_defaults_are_valid(self) -> None:
        assert checks.check_settings() == []

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("ENABLED", "yes"),
            ("REQUIRE_COOKIE", 1),
            ("DELETE_ON_LOGOUT", None),
            ("BLOCKED_USER_AGENTS", "bot"),
            ("BLOCKED_USER_AGENTS", ["(unclosed"]),
            ("BLOCKED_USER_AGENTS", [3]),
            ("RATE_LIMIT", "thirty per minute"),
            ("RATE_LIMIT", 30),
            ("SESSION_AGE", 0),
            ("SESSION_AGE", "3600"),
            ("TOUCH_INTERVAL", -1),
            ("TOUCH_INTERVAL", True),
            ("MAX_AGE", timedelta(0)),
            ("MAX_AGE", "30d"),
            ("EMAIL_DOMAIN", "nodot"),
            ("EMAIL_DOMAIN", "a@b.c"),
            ("REGISTER_URL", 5),
            ("CAPTCHA_VERIFIER", 5),
            ("USERNAME_GENERATOR", None),
        ],
    )
    def test_e003_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == ["anonauth.E003"]
        assert errors[0].msg.startswith(f"ANONAUTH_{name} must be")

    @pytest.mark.parametrize(
        ("name", "value"),
        [("RATE_LIMIT", "5/10m"), ("MAX_AGE", 3600), ("TOUCH_INTERVAL", 0), ("RATE_LIMIT", None)],
    )
    def test_good_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            assert checks.check_settings() == []

    @pytest.mark.parametrize("name", ["USERNAME_GENERATOR", "CAPTCHA_VERIFIER"])
    def test_e004_paths_must_import(self, name: str) -> None:
        with override_settings(**{f"ANONAUTH_{name}": "tests.nowhere.nothing"}):
            errors = checks.check_settings()
        assert ids(errors) == ["anonauth.E004"]
        assert "does not import" in errors[0].msg

    @override_settings(ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify")
    def test_importable_path(self) -> None:
        assert checks.check_settings() == []


class TestBackends:
    @pytest.mark.parametrize(
        "backends",
        [
            ["django.contrib.auth.backends.ModelBackend"],
            ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"],
            [
                "rules.permissions.ObjectPermissionBackend",
                "django.contrib.auth.backends.ModelBackend",
            ],
        ],
    )
    def test_a_backend_that_loads_users(self, backends: list[str]) -> None:
        with override_settings(AUTHENTICATION_BACKENDS=backends):
            assert checks.check_backends() == []

    def test_e005_no_backend_can_load_a_guest(self) -> None:
        backends = [
            "axes.backends.AxesStandaloneBackend",
            "rules.permissions.ObjectPermissionBackend",
        ]
        with override_settings(AUTHENTICATION_BACKENDS=backends):
            [error] = checks.check_backends()
        assert error.id == "anonauth.E005"
        assert "get_user()" in error.msg

    def test_a_path_that_does_not_import_is_left_to_django(self) -> None:
        with override_settings(AUTHENTICATION_BACKENDS=["nowhere.Backend"]):
            assert checks.check_backends() == []


def test_checks_are_registered() -> None:
    from django.core.checks import registry

    registered = registry.registry.get_checks()
    for check in (
        checks.check_settings,
        checks.check_middleware,
        checks.check_backends,
        checks.check_caches,
        checks.check_security,
    ):
        assert check in registered


class TestLinkSettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("LINK_REASSIGN", "some"),
            ("LINK_REASSIGN", ["shop.Cart"]),
            ("LINK_EXCLUDE", "shop.Cart.owner"),
            ("LINK_EXCLUDE", ["shop/Cart/owner"]),
            ("LINK_CONFLICTS", ["shop.Cart.owner"]),
            ("LINK_CONFLICTS", {"shop.Cart": "keep_target"}),
            ("LINK_CONFLICTS", {"shop.Cart.owner": "merge"}),
            ("LINK_DELETE_GUEST", "no"),
            ("LINK_RATE_LIMIT", "often"),
        ],
    )
    def test_e003_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == ["anonauth.E003"]
        assert errors[0].msg.startswith(f"ANONAUTH_{name} must be")

    @override_settings(
        ANONAUTH_LINK_REASSIGN=["shop.Cart.owner", "linkapp.Note.author"],
        ANONAUTH_LINK_CONFLICTS={"shop.Cart.owner": "keep_guest", "linkapp.Profile.user": "error"},
        ANONAUTH_LINK_EXCLUDE=["anonauth.Guest.user"],
    )
    def test_good_link_settings(self) -> None:
        assert checks.check_settings() == []

    @override_settings(
        ANONAUTH_LINK_REASSIGN=["shop.Cart.owner", "shop.Cart.nope"],
        ANONAUTH_LINK_CONFLICTS={"shop.Nothing.owner": "error"},
        ANONAUTH_LINK_EXCLUDE=["shop.Order.buyer"],
    )
    def test_w004_unknown_labels(self) -> None:
        warnings = checks.check_settings()
        assert ids(warnings) == ["anonauth.W004"] * 3
        assert {w.msg.split("'")[1] for w in warnings} == {
            "shop.Cart.nope",
            "shop.Nothing.owner",
            "shop.Order.buyer",
        }

    def test_default_exclude_may_name_apps_that_are_not_installed(self) -> None:
        assert checks.check_settings() == []


class TestPurgeSettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("PURGE_BATCH_SIZE", 0),
            ("PURGE_BATCH_SIZE", "100"),
            ("PURGE_LOCK_TIMEOUT", -1),
            ("PURGE_SPARE", 3),
        ],
    )
    def test_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = [e for e in check_settings() if f"ANONAUTH_{name}" in e.msg]
        assert [e.id for e in errors] == ["anonauth.E003"]

    @override_settings(ANONAUTH_PURGE_SPARE="tests.nowhere.spare")
    def test_spare_must_import(self) -> None:
        errors = [e for e in check_settings() if "ANONAUTH_PURGE_SPARE" in e.msg]
        assert [e.id for e in errors] == ["anonauth.E004"]

    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_even")
    def test_good_values(self) -> None:
        assert check_settings() == []
