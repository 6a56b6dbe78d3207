"""System checks. Errors stop ``manage.py`` commands; warnings are advice."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from anonauth import sessions
from anonauth.conf import conf
from anonauth.link import CONFLICT_POLICIES, unknown_labels

MIDDLEWARE_PATH = "anonauth.middleware.GuestMiddleware"
AUTH_MIDDLEWARE_PATH = "django.contrib.auth.middleware.AuthenticationMiddleware"
UNSHARED_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
RATE_PATTERN = re.compile(r"^\d+/\d*[smhd]$")
LABEL_PATTERN = re.compile(r"^\w+\.\w+\.\w+$")

Check = Callable[..., list[CheckMessage]]


def check_middleware(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E001: the middleware after AuthenticationMiddleware;
    anonauth.E002: sessions installed; anonauth.W001: the middleware installed."""
    middleware = list(settings.MIDDLEWARE)
    errors: list[CheckMessage] = []
    if "django.contrib.sessions" not in settings.INSTALLED_APPS and settings.SESSION_ENGINE in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        errors.append(
            Error(
                "anonauth needs sessions: add 'django.contrib.sessions' to INSTALLED_APPS.",
                id="anonauth.E002",
            )
        )
    if MIDDLEWARE_PATH not in middleware:
        errors.append(
            Warning(
                f"'{MIDDLEWARE_PATH}' is not in MIDDLEWARE: guest_allowed views "
                "will not create guests.",
                hint=f"Add it after '{AUTH_MIDDLEWARE_PATH}'.",
                id="anonauth.W001",
            )
        )
    elif AUTH_MIDDLEWARE_PATH not in middleware or middleware.index(
        MIDDLEWARE_PATH
    ) < middleware.index(AUTH_MIDDLEWARE_PATH):
        errors.append(
            Error(
                f"'{MIDDLEWARE_PATH}' must come after '{AUTH_MIDDLEWARE_PATH}' in MIDDLEWARE.",
                id="anonauth.E001",
            )
        )
    return errors


def check_backends(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E005: a backend in AUTHENTICATION_BACKENDS can load a guest (get_user)."""
    try:
        sessions.guest_backend()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="anonauth.E005")]
    except ImportError:
        return []  # Django's own checks and the login itself report a bad path
    return []


def check_caches(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.W002: the rate limit counts in a cache that several processes share."""
    if conf.RATE_LIMIT is None:
        return []
    cache_name = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    backend = settings.CACHES.get(cache_name, {}).get("BACKEND", "")
    if backend in UNSHARED_CACHES:
        return [
            Warning(
                f"ANONAUTH_RATE_LIMIT counts in the cache {cache_name!r} ({backend}), "
                "which each process keeps to itself.",
                hint="Use a shared cache such as Redis or Memcached in production "
                "(RATELIMIT_USE_CACHE names the cache).",
                id="anonauth.W002",
            )
        ]
    return []


def check_security(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.W003: Argon2 is the first password hasher (used when guests upgrade)."""
    if not settings.PASSWORD_HASHERS or "Argon2" not in settings.PASSWORD_HASHERS[0]:
        return [
            Warning(
                "The first of PASSWORD_HASHERS is not Argon2; upgraded guests' passwords "
                "are hashed with it.",
                hint="Put 'django.contrib.auth.hashers.Argon2PasswordHasher' first.",
                id="anonauth.W003",
            )
        ]
    return []


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E003: a setting of the wrong type or value;
    anonauth.E004: a dotted path that does not import."""
    errors: list[CheckMessage] = [
        _type_error(name, problem) for name, problem in _setting_problems() if problem is not None
    ]
    errors.extend(_import_errors())
    if not errors:
        errors.extend(_unknown_label_warnings())
    return errors


def _setting_problems() -> list[tuple[str, str | None]]:
    return [
        ("ENABLED", _expect(conf.ENABLED, bool, "a bool")),
        ("REQUIRE_COOKIE", _expect(conf.REQUIRE_COOKIE, bool, "a bool")),
        ("DELETE_ON_LOGOUT", _expect(conf.DELETE_ON_LOGOUT, bool, "a bool")),
        ("BLOCKED_USER_AGENTS", _patterns_problem(conf.BLOCKED_USER_AGENTS)),
        ("RATE_LIMIT", _rate_problem(conf.RATE_LIMIT)),
        ("SESSION_AGE", _positive_int(conf.SESSION_AGE)),
        ("TOUCH_INTERVAL", _positive_int(conf.TOUCH_INTERVAL, allow_zero=True)),
        ("MAX_AGE", _max_age_problem()),
        ("EMAIL_DOMAIN", _domain_problem(conf.EMAIL_DOMAIN)),
        ("REGISTER_URL", _optional_str(conf.REGISTER_URL)),
        ("CAPTCHA_VERIFIER", _optional_str(conf.CAPTCHA_VERIFIER)),
        ("USERNAME_GENERATOR", _expect(conf.USERNAME_GENERATOR, str, "a dotted path")),
        ("LINK_REASSIGN", _reassign_problem(conf.LINK_REASSIGN)),
        ("LINK_EXCLUDE", _labels_problem(conf.LINK_EXCLUDE)),
        ("LINK_CONFLICTS", _conflicts_problem(conf.LINK_CONFLICTS)),
        ("LINK_DELETE_GUEST", _expect(conf.LINK_DELETE_GUEST, bool, "a bool")),
        ("LINK_RATE_LIMIT", _rate_problem(conf.LINK_RATE_LIMIT)),
        ("PURGE_SPARE", _optional_str(conf.PURGE_SPARE)),
        ("PURGE_BATCH_SIZE", _positive_count(conf.PURGE_BATCH_SIZE)),
        ("PURGE_LOCK_TIMEOUT", _positive_int(conf.PURGE_LOCK_TIMEOUT)),
        ("AUDIT", _expect(conf.AUDIT, bool, "a bool")),
    ]


def _type_error(name: str, problem: str) -> Error:
    return Error(f"ANONAUTH_{name} must be {problem}.", id="anonauth.E003")


def _expect(value: Any, kind: type, description: str) -> str | None:
    return None if isinstance(value, kind) else description


def _optional_str(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "a string or None"


def _positive_int(value: Any, *, allow_zero: bool = False) -> str | None:
    ok = (
        isinstance(value, int) and not isinstance(value, bool) and value >= (0 if allow_zero else 1)
    )
    return None if ok else "a positive number of seconds"


def _positive_count(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "a positive integer"


def _max_age_problem() -> str | None:
    raw = getattr(settings, "ANONAUTH_MAX_AGE", timedelta(days=30))
    if isinstance(raw, timedelta):
        return None if raw > timedelta(0) else "a positive timedelta or number of seconds"
    return _positive_int(raw)


def _rate_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and RATE_PATTERN.match(value)):
        return None
    return "None or a rate like '30/m' (django-ratelimit syntax)"


def _patterns_problem(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return "a list of regular expressions"
    for pattern in value:
        try:
            re.compile(pattern)
        except (re.error, TypeError):
            return f"a list of regular expressions ({pattern!r} is not one)"
    return None


def _domain_problem(value: Any) -> str | None:
    if isinstance(value, str) and "." in value and "@" not in value:
        return None
    return "a domain name such as 'guest.invalid'"


def _reassign_problem(value: Any) -> str | None:
    if value == "all":
        return None
    problem = _labels_problem(value)
    return None if problem is None else f'"all" or {problem}'


def _labels_problem(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return 'a list of relation labels "app_label.ModelName.field_name"'
    bad = [label for label in value if not (isinstance(label, str) and LABEL_PATTERN.match(label))]
    if bad:
        return f'a list of relation labels "app_label.ModelName.field_name" (not {bad[0]!r})'
    return None


def _conflicts_problem(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "a dict of relation label to conflict policy"
    labels_problem = _labels_problem(list(value))
    if labels_problem is not None:
        return f"a dict keyed by relation label: {labels_problem}"
    bad = [policy for policy in value.values() if policy not in CONFLICT_POLICIES]
    if bad:
        return f"a dict of label to one of {', '.join(CONFLICT_POLICIES)} (not {bad[0]!r})"
    return None


def _unknown_label_warnings() -> list[CheckMessage]:
    """anonauth.W004: a configured label that names no relation to the user model."""
    configured: list[tuple[str, Sequence[str]]] = [("LINK_CONFLICTS", list(conf.LINK_CONFLICTS))]
    if conf.LINK_REASSIGN != "all":
        configured.append(("LINK_REASSIGN", conf.LINK_REASSIGN))
    if hasattr(settings, "ANONAUTH_LINK_EXCLUDE"):  # the defaults name optional apps
        configured.append(("LINK_EXCLUDE", conf.LINK_EXCLUDE))
    return [
        Warning(
            f"ANONAUTH_{name} names {label!r}, which is no relation to the user model.",
            hint="Labels are 'app_label.ModelName.field_name' of a ForeignKey, "
            "OneToOneField or ManyToManyField to AUTH_USER_MODEL.",
            id="anonauth.W004",
        )
        for name, labels in configured
        for label in unknown_labels(labels)
    ]


def _import_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("USERNAME_GENERATOR", "CAPTCHA_VERIFIER", "PURGE_SPARE"):
        path = getattr(conf, name)
        if not isinstance(path, str):
            continue
        try:
            import_string(path)
        except ImportError as error:
            errors.append(
                Error(f"ANONAUTH_{name} = {path!r} does not import: {error}", id="anonauth.E004")
            )
    return errors
