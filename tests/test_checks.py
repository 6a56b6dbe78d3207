from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps
from django.urls import include, path

from anonauth import checks
from anonauth.checks import SETTING_IDS, check_settings
from anonauth.conf import Settings

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "anonauth.middleware.GuestMiddleware",
]


REDIS = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:6379/0",
}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
ARGON2_FIRST = ["django.contrib.auth.hashers.Argon2PasswordHasher"]


class ProjectSessionMiddleware(SessionMiddleware):
    """A project's own session middleware (anonauth.E203 accepts subclasses)."""


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


class TestMiddleware:
    def test_good_order(self) -> None:
        with override_settings(MIDDLEWARE=MIDDLEWARE):
            assert checks.check_middleware() == []

    def test_e201_before_authentication(self) -> None:
        wrong = [MIDDLEWARE[0], MIDDLEWARE[1], MIDDLEWARE[3], MIDDLEWARE[2]]
        with override_settings(MIDDLEWARE=wrong):
            [error] = checks.check_middleware()
        assert error.id == "anonauth.E201"
        assert "must come after" in error.msg

    def test_e201_without_authentication(self) -> None:
        with override_settings(MIDDLEWARE=[MIDDLEWARE[0], MIDDLEWARE[3]]):
            assert ids(checks.check_middleware()) == ["anonauth.E201"]

    def test_e202_sessions_missing(self) -> None:
        installed = [app for app in settings.INSTALLED_APPS if app != "django.contrib.sessions"]
        with override_settings(MIDDLEWARE=MIDDLEWARE, INSTALLED_APPS=installed):
            assert ids(checks.check_middleware()) == ["anonauth.E202"]

    def test_e203_session_middleware_missing(self) -> None:
        with override_settings(MIDDLEWARE=MIDDLEWARE[1:]):
            [error] = checks.check_middleware()
        assert error.id == "anonauth.E203"
        assert "SessionMiddleware' is not in MIDDLEWARE" in error.msg

    def test_a_session_middleware_subclass_will_do(self) -> None:
        project_sessions = f"{__name__}.{ProjectSessionMiddleware.__name__}"
        with override_settings(
            MIDDLEWARE=["tests.nowhere.Middleware", project_sessions, *MIDDLEWARE[1:]]
        ):
            assert checks.check_middleware() == []

    def test_w201_middleware_missing(self) -> None:
        with override_settings(MIDDLEWARE=MIDDLEWARE[:3]):
            assert ids(checks.check_middleware()) == ["anonauth.W201"]


class TestCaches:
    def test_w301_local_memory_cache(self) -> None:
        assert ids(checks.check_caches()) == ["anonauth.W301"]

    @override_settings(CACHES={"default": REDIS})
    def test_shared_cache(self) -> None:
        assert checks.check_caches() == []

    @override_settings(ANONAUTH_RATE_LIMIT=None)
    def test_no_rate_limit_no_warning(self) -> None:
        assert checks.check_caches() == []

    @pytest.mark.parametrize("lock_backend", ["locmem.LocMemCache", "dummy.DummyCache"])
    def test_w302_purge_lock_per_process_rate_limit_shared(self, lock_backend: str) -> None:
        default = {"BACKEND": f"django.core.cache.backends.{lock_backend}"}
        with override_settings(
            CACHES={"default": default, "ratelimit": REDIS}, RATELIMIT_USE_CACHE="ratelimit"
        ):
            [warning] = checks.check_caches()
        assert warning.id == "anonauth.W302"
        assert "two workers' purges would run at the same time" in warning.msg

    @override_settings(CACHES={"default": REDIS, "local": LOCMEM}, RATELIMIT_USE_CACHE="local")
    def test_a_shared_purge_lock_is_fine(self) -> None:
        assert ids(checks.check_caches()) == ["anonauth.W301"]


class TestSecurity:
    def test_w501_argon2_not_first(self) -> None:
        assert ids(checks.check_security()) == ["anonauth.W501"]

    @override_settings(PASSWORD_HASHERS=ARGON2_FIRST)
    def test_argon2_first(self) -> None:
        assert checks.check_security() == []

    @pytest.mark.parametrize(
        "key", ["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED", "http_x_client_ip"]
    )
    def test_w502_a_header_clients_can_send(self, key: str) -> None:
        with override_settings(PASSWORD_HASHERS=ARGON2_FIRST, RATELIMIT_IP_META_KEY=key):
            [warning] = checks.check_security()
        assert warning.id == "anonauth.W502"
        assert "any client can send itself" in warning.msg
        assert "recipes/proxies" in warning.hint

    @pytest.mark.parametrize("key", [None, "REMOTE_ADDR", "myproject.ip.client_ip", len])
    def test_other_client_addresses(self, key: Any) -> None:
        with override_settings(PASSWORD_HASHERS=ARGON2_FIRST, RATELIMIT_IP_META_KEY=key):
            assert checks.check_security() == []

    @override_settings(
        PASSWORD_HASHERS=ARGON2_FIRST,
        RATELIMIT_IP_META_KEY="HTTP_X_FORWARDED_FOR",
        ANONAUTH_RATE_LIMIT=None,
        ANONAUTH_LINK_RATE_LIMIT=None,
    )
    def test_no_rate_limit_no_w502(self) -> None:
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
            ("EMAIL_DOMAIN", "bad domain.test"),
            ("EMAIL_DOMAIN", "guest..invalid"),
            ("EMAIL_DOMAIN", None),
            ("REGISTER_URL", 5),
            ("CAPTCHA_VERIFIER", 5),
            ("USERNAME_GENERATOR", None),
            ("EMAIL_GENERATOR", None),
            ("EMAIL_GENERATOR", 5),
        ],
    )
    def test_e1xx_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == [SETTING_IDS[name]]
        assert errors[0].msg.startswith(f"ANONAUTH_{name} must be")

    def test_one_id_per_setting(self) -> None:
        settings_read = {name for name, a in vars(Settings).items() if isinstance(a, property)}
        assert set(SETTING_IDS) == settings_read
        assert len(set(SETTING_IDS.values())) == len(SETTING_IDS)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("RATE_LIMIT", "5/10m"),
            ("MAX_AGE", 7200),
            ("TOUCH_INTERVAL", 0),
            ("RATE_LIMIT", None),
            ("EMAIL_DOMAIN", "guests.example.com"),
            ("EMAIL_GENERATOR", "tests.testapp.generators.tenant_email"),
        ],
    )
    def test_good_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            assert checks.check_settings() == []

    @pytest.mark.parametrize("name", ["USERNAME_GENERATOR", "EMAIL_GENERATOR", "CAPTCHA_VERIFIER"])
    def test_e150_paths_must_import(self, name: str) -> None:
        with override_settings(**{f"ANONAUTH_{name}": "tests.nowhere.nothing"}):
            errors = checks.check_settings()
        assert ids(errors) == ["anonauth.E150"]
        assert "does not import" in errors[0].msg

    @override_settings(ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify")
    def test_importable_path(self) -> None:
        assert checks.check_settings() == []

    @pytest.mark.parametrize("max_age", [timedelta(minutes=30), 3600])
    def test_e151_max_age_not_longer_than_touch_interval(self, max_age: Any) -> None:
        with override_settings(ANONAUTH_MAX_AGE=max_age):
            [error] = checks.check_settings()
        assert error.id == "anonauth.E151"
        assert error.msg.startswith("ANONAUTH_MAX_AGE (")
        assert "is not longer than ANONAUTH_TOUCH_INTERVAL (3600 seconds)" in error.msg

    @override_settings(ANONAUTH_MAX_AGE=timedelta(minutes=30), ANONAUTH_TOUCH_INTERVAL=600)
    def test_max_age_longer_than_touch_interval(self) -> None:
        assert checks.check_settings() == []

    @override_settings(ANONAUTH_TOUCH_INTERVAL="hourly")
    def test_no_cutoff_problem_without_a_valid_touch_interval(self) -> None:
        assert checks.short_cutoff_problem(timedelta(0)) is None
        assert ids(checks.check_settings()) == ["anonauth.E107"]

    @pytest.mark.parametrize(
        ("name", "suggestion"),
        [
            ("ANONAUTH_RATELIMIT", "Did you mean ANONAUTH_RATE_LIMIT?"),
            ("ANONAUTH_MAXAGE", "Did you mean ANONAUTH_MAX_AGE?"),
            ("ANONAUTH_PURGE_BATCHSIZE", "Did you mean ANONAUTH_PURGE_BATCH_SIZE?"),
            ("ANONAUTH_XYZZY", "See anonauth's settings."),
        ],
    )
    def test_w101_unknown_setting(self, name: str, suggestion: str) -> None:
        with override_settings(**{name: 1}):
            [warning] = checks.check_settings()
        assert warning.id == "anonauth.W101"
        assert warning.msg == f"{name} is not an anonauth setting: anonauth ignores it."
        assert warning.hint == suggestion

    @override_settings(ANONAUTH_ENABLED="yes", ANONAUTH_RATELIMIT="30/m")
    def test_w101_comes_with_errors(self) -> None:
        assert ids(checks.check_settings()) == ["anonauth.E101", "anonauth.W101"]


class TestFormerIds:
    """The ids before the families still silence what they used to."""

    @override_settings(SILENCED_SYSTEM_CHECKS=["anonauth.W002"])
    def test_a_former_warning_id(self) -> None:
        assert checks.check_caches() == []

    @override_settings(
        SILENCED_SYSTEM_CHECKS=["anonauth.E003"], ANONAUTH_ENABLED="yes", ANONAUTH_AUDIT=1
    )
    def test_the_former_settings_id_silences_every_setting_id(self) -> None:
        assert checks.check_settings() == []

    @override_settings(SILENCED_SYSTEM_CHECKS=["anonauth.E004"], ANONAUTH_ENABLED="yes")
    def test_only_its_own_successors(self) -> None:
        assert ids(checks.check_settings()) == ["anonauth.E101"]

    def test_every_successor_is_a_check(self) -> None:
        source = Path(checks.__file__).read_text(encoding="utf-8")
        successors = {new for news in checks.FORMER_IDS.values() for new in news}
        assert all(source.count(f'"{new}"') >= 2 for new in successors - set(SETTING_IDS.values()))


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

    def test_e501_no_backend_can_load_a_guest(self) -> None:
        backends = [
            "axes.backends.AxesStandaloneBackend",
            "rules.permissions.ObjectPermissionBackend",
            "tests.testapp.backends.PermissionOnlyBackend",  # BaseBackend's get_user: None
        ]
        with override_settings(AUTHENTICATION_BACKENDS=backends):
            [error] = checks.check_backends()
        assert error.id == "anonauth.E501"
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
        checks.check_allauth,
        checks.check_models,
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
    def test_e1xx_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == [SETTING_IDS[name]]
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
    def test_w102_unknown_labels(self) -> None:
        warnings = checks.check_settings()
        assert ids(warnings) == ["anonauth.W102"] * 3
        assert {w.msg.split("'")[1] for w in warnings} == {
            "shop.Cart.nope",
            "shop.Nothing.owner",
            "shop.Order.buyer",
        }

    def test_default_exclude_may_name_apps_that_are_not_installed(self) -> None:
        assert checks.check_settings() == []


class TestAbuseSettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("UPGRADE_RATE_LIMIT", "often"),
            ("TRUSTED_PROXIES", -1),
            ("TRUSTED_PROXIES", "1"),
            ("PROBE_COOKIE_NAME", "bad name"),
            ("PROBE_COOKIE_NAME", ""),
        ],
    )
    def test_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == [SETTING_IDS[name]]

    @override_settings(
        ANONAUTH_UPGRADE_RATE_LIMIT=None,
        ANONAUTH_TRUSTED_PROXIES=2,
        ANONAUTH_PROBE_COOKIE_NAME="__Host-anonauth",
    )
    def test_good_values(self) -> None:
        assert checks.check_settings() == []


class TestPolicySettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("BEFORE_CREATE", 5),
            ("LIVE_GUEST_CAP", 0),
            ("LIVE_GUEST_CAP", "10"),
            ("LIVE_GUEST_CAP", True),
        ],
    )
    def test_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == [SETTING_IDS[name]]

    @override_settings(ANONAUTH_BEFORE_CREATE="tests.nowhere.hook")
    def test_hook_must_import(self) -> None:
        assert ids(checks.check_settings()) == ["anonauth.E150"]

    @override_settings(
        ANONAUTH_BEFORE_CREATE="tests.testapp.policy_hooks.refuse_beta", ANONAUTH_LIVE_GUEST_CAP=3
    )
    def test_good_values(self) -> None:
        assert checks.check_settings() == []


class TestMetricsSettings:
    @pytest.mark.parametrize("value", ["on", 1, None, "AUTO"])
    def test_e133_bad_values(self, value: Any) -> None:
        with override_settings(ANONAUTH_METRICS=value):
            errors = checks.check_settings()
        assert ids(errors) == ["anonauth.E133"]
        assert errors[0].msg == 'ANONAUTH_METRICS must be True, False or "auto".'

    @pytest.mark.parametrize("value", [True, False, "auto"])
    def test_good_values(self, value: Any) -> None:
        with override_settings(ANONAUTH_METRICS=value):
            assert checks.check_settings() == []

    @pytest.mark.parametrize(("value", "expected"), [(True, ["anonauth.E134"]), ("auto", [])])
    def test_e134_on_without_prometheus_client(
        self, value: Any, expected: list[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("anonauth.metrics.available", lambda: False)
        with override_settings(ANONAUTH_METRICS=value):
            errors = checks.check_settings()
        assert ids(errors) == expected
        if errors:
            assert "prometheus-client is not installed" in errors[0].msg


class TestMetadataSettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("METADATA_MAX_BYTES", -1),
            ("METADATA_MAX_BYTES", "1024"),
            ("METADATA_MAX_BYTES", True),
            ("METADATA_MAX_DEPTH", 0),
            ("METADATA_MAX_DEPTH", None),
            ("METADATA_MAX_DEPTH", 2.5),
        ],
    )
    def test_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == [SETTING_IDS[name]]
        assert errors[0].msg.startswith(f"ANONAUTH_{name} must be")

    @pytest.mark.parametrize(("size", "depth"), [(None, 1), (0, 3), (65536, 10)])
    def test_good_values(self, size: int | None, depth: int) -> None:
        with override_settings(ANONAUTH_METADATA_MAX_BYTES=size, ANONAUTH_METADATA_MAX_DEPTH=depth):
            assert checks.check_settings() == []

    def test_the_ids(self) -> None:
        assert SETTING_IDS["METADATA_MAX_BYTES"] == "anonauth.E126"
        assert SETTING_IDS["METADATA_MAX_DEPTH"] == "anonauth.E127"
        assert SETTING_IDS["EMAIL_GENERATOR"] == "anonauth.E128"


class TestPurgeSettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("PURGE_BATCH_SIZE", 0),
            ("PURGE_BATCH_SIZE", "100"),
            ("PURGE_LOCK_TIMEOUT", -1),
            ("PURGE_SPARE", 3),
            ("PURGE_SHARDS", 0),
            ("PURGE_SHARDS", "4"),
        ],
    )
    def test_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = [e for e in check_settings() if f"ANONAUTH_{name}" in e.msg]
        assert [e.id for e in errors] == [SETTING_IDS[name]]

    @override_settings(ANONAUTH_PURGE_SPARE="tests.nowhere.spare")
    def test_spare_must_import(self) -> None:
        errors = [e for e in check_settings() if "ANONAUTH_PURGE_SPARE" in e.msg]
        assert [e.id for e in errors] == ["anonauth.E150"]

    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_even")
    def test_good_values(self) -> None:
        assert check_settings() == []


OUR_ADAPTERS = {
    "ACCOUNT_ADAPTER": "anonauth.contrib.allauth.AccountAdapter",
    "SOCIALACCOUNT_ADAPTER": "anonauth.contrib.allauth.SocialAccountAdapter",
}


@pytest.fixture
def allauth_installed() -> Iterator[None]:
    """django-allauth installed as ``tests.settings_allauth`` installs it, on top of the
    current settings; anonauth's adapters not configured (each test configures its own)."""
    from tests import settings_allauth

    def added(name: str) -> list[str]:
        current = getattr(settings, name)
        return [
            *current,
            *(item for item in getattr(settings_allauth, name) if item not in current),
        ]

    project = {
        "MIDDLEWARE": added("MIDDLEWARE"),
        "AUTHENTICATION_BACKENDS": settings_allauth.AUTHENTICATION_BACKENDS,
        "HEADLESS_FRONTEND_URLS": settings_allauth.HEADLESS_FRONTEND_URLS,
        "ROOT_URLCONF": "tests.urls_allauth",
    }
    # Apart: the installed apps are set up before the other overrides apply.
    with override_settings(**project), override_settings(INSTALLED_APPS=added("INSTALLED_APPS")):
        for name in OUR_ADAPTERS:  # set by tests.settings_allauth
            if hasattr(settings, name):
                delattr(settings, name)  # in the override only
        yield


def urlconf(*patterns: Any) -> types.ModuleType:
    module = types.ModuleType("project_urls")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return module


@pytest.mark.usefixtures("allauth_installed")
class TestAllauth:
    @override_settings(**OUR_ADAPTERS)
    def test_anonauth_adapters_and_signup_view(self) -> None:
        assert checks.check_allauth() == []

    @override_settings(
        ACCOUNT_ADAPTER="tests.allauth_subclasses.ShopAccountAdapter",
        SOCIALACCOUNT_ADAPTER="tests.allauth_subclasses.ShopSocialAccountAdapter",
    )
    def test_subclasses(self) -> None:
        from tests.allauth_subclasses import ShopSignupView

        signup = path("accounts/signup/", ShopSignupView.as_view(), name="account_signup")
        routes = urlconf(signup, path("accounts/", include("allauth.urls")))
        with override_settings(ROOT_URLCONF=routes):
            assert checks.check_allauth() == []

    @pytest.mark.parametrize(
        "account_adapter", [None, "allauth.account.adapter.DefaultAccountAdapter"]
    )
    def test_e401_social_adapter_without_account_adapter(self, account_adapter: Any) -> None:
        adapters = {"SOCIALACCOUNT_ADAPTER": OUR_ADAPTERS["SOCIALACCOUNT_ADAPTER"]}
        if account_adapter is not None:
            adapters["ACCOUNT_ADAPTER"] = account_adapter
        with override_settings(**adapters):
            [error] = checks.check_allauth()
        assert error.id == "anonauth.E401"
        assert "a guest's social login would fail with a server error" in error.msg

    @override_settings(SOCIALACCOUNT_ADAPTER="tests.allauth_subclasses.ShopSocialAccountAdapter")
    def test_e401_for_a_subclass(self) -> None:
        assert ids(checks.check_allauth()) == ["anonauth.E401"]

    @override_settings(ACCOUNT_ADAPTER=OUR_ADAPTERS["ACCOUNT_ADAPTER"])
    def test_account_adapter_alone_is_fine(self) -> None:
        assert checks.check_allauth() == []

    @pytest.mark.parametrize(
        "adapters", [OUR_ADAPTERS, {"ACCOUNT_ADAPTER": "anonauth.contrib.allauth.AccountAdapter"}]
    )
    def test_w401_allauth_signup_ahead(self, adapters: dict[str, str]) -> None:
        from anonauth.contrib.allauth.views import SignupView

        ours = path("accounts/signup/", SignupView.as_view(), name="account_signup")
        routes = urlconf(path("accounts/", include("allauth.urls")), ours)
        with override_settings(ROOT_URLCONF=routes, **adapters):
            [warning] = checks.check_allauth()
        assert warning.id == "anonauth.W401"
        assert warning.msg.startswith("The signup page /accounts/signup/ is allauth.account.")
        assert "SignupView, not anonauth's: allauth sends a guest" in warning.msg

    @override_settings(**OUR_ADAPTERS)
    def test_w401_a_function_view(self) -> None:
        signup = path("signup/", lambda request: None, name="account_signup")
        with override_settings(ROOT_URLCONF=urlconf(signup)):
            assert ids(checks.check_allauth()) == ["anonauth.W401"]

    @override_settings(**OUR_ADAPTERS, ROOT_URLCONF="tests.urls")
    def test_no_signup_page_no_warning(self) -> None:
        assert checks.check_allauth() == []

    def test_allauth_adapters_alone_are_left_alone(self) -> None:
        with override_settings(ROOT_URLCONF=urlconf(path("accounts/", include("allauth.urls")))):
            assert checks.check_allauth() == []

    @override_settings(ACCOUNT_ADAPTER="tests.nowhere.Adapter", SOCIALACCOUNT_ADAPTER=len)
    def test_adapters_that_do_not_import(self) -> None:
        assert checks.check_allauth() == []


def test_allauth_not_installed() -> None:
    with override_settings(**OUR_ADAPTERS):
        assert checks.check_allauth() == []


class TestModels:
    @isolate_apps("tests.testapp")
    def test_w601_do_nothing_to_the_user_model(self) -> None:
        class Receipt(models.Model):  # noqa: DJ008
            by_label = models.ForeignKey(settings.AUTH_USER_MODEL, models.DO_NOTHING)
            by_class = models.OneToOneField(get_user_model(), models.DO_NOTHING, related_name="+")
            cascade = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
            other = models.ForeignKey("testapp.Thing", models.DO_NOTHING, related_name="+")
            tags = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")

            class Meta:
                app_label = "testapp"

        warnings = checks.check_models(app_configs=[Receipt._meta.apps.get_app_config("testapp")])
        assert ids(warnings) == ["anonauth.W601"] * 2
        assert [w.obj for w in warnings] == [
            Receipt._meta.get_field("by_label"),
            Receipt._meta.get_field("by_class"),
        ]
        assert "on_delete=DO_NOTHING: the purge cannot delete a guest" in warnings[0].msg

    def test_the_project_models(self) -> None:
        warnings = checks.check_models()
        assert all(w.id == "anonauth.W601" for w in warnings)
        assert all(w.obj.model in apps.get_models() for w in warnings)


class TestTransferSettings:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("TRANSFER_CODE_AGE", 0),
            ("TRANSFER_CODE_AGE", "600"),
            ("TRANSFER_RATE_LIMIT", "often"),
            ("TRANSFER_REDEEM_RATE_LIMIT", "10 a minute"),
            ("TRANSFER_ENDS_FIRST_SESSION", "yes"),
        ],
    )
    def test_e138_to_e141_bad_values(self, name: str, value: Any) -> None:
        with override_settings(**{f"ANONAUTH_{name}": value}):
            errors = checks.check_settings()
        assert ids(errors) == [SETTING_IDS[name]]
        assert errors[0].msg.startswith(f"ANONAUTH_{name} must be")

    @override_settings(
        ANONAUTH_TRANSFER_CODE_AGE=60,
        ANONAUTH_TRANSFER_RATE_LIMIT=None,
        ANONAUTH_TRANSFER_REDEEM_RATE_LIMIT="3/m",
        ANONAUTH_TRANSFER_ENDS_FIRST_SESSION=True,
    )
    def test_good_values(self) -> None:
        assert checks.check_settings() == []


class TestExportSettings:
    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            (["linkapp.Note"], "a dict of model label"),
            ({"linkapp.Note": 5}, "not 'linkapp.Note': 5"),
            ({"linkapp.Nothing": "tests.test_export.note_as_text"}, "is no model"),
            ({"nodot": "tests.test_export.note_as_text"}, "is no model"),
            ({"linkapp.Note": "tests.nowhere.serialize"}, "does not"),
            ({"linkapp.Note": "tests.test_export.ROWS"}, "is neither"),
        ],
    )
    def test_e129_bad_serializers(self, value: Any, problem: str) -> None:
        with override_settings(ANONAUTH_EXPORT_SERIALIZERS=value):
            [error] = checks.check_settings()
        assert error.id == SETTING_IDS["EXPORT_SERIALIZERS"] == "anonauth.E129"
        assert error.msg.startswith("ANONAUTH_EXPORT_SERIALIZERS must be")
        assert problem in error.msg

    @pytest.mark.parametrize("value", ["ten an hour", 10])
    def test_e132_bad_rate(self, value: Any) -> None:
        with override_settings(ANONAUTH_EXPORT_RATE_LIMIT=value):
            [error] = checks.check_settings()
        assert error.id == SETTING_IDS["EXPORT_RATE_LIMIT"] == "anonauth.E132"

    @override_settings(
        ANONAUTH_EXPORT_SERIALIZERS={
            "linkapp.Note": "tests.test_export.note_as_text",
            "linkapp.Profile": "tests.test_export.ProfileSerializer",
        },
        ANONAUTH_EXPORT_RATE_LIMIT=None,
    )
    def test_good_values(self) -> None:
        assert checks.check_settings() == []
