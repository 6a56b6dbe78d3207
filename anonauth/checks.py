"""System checks. Errors stop ``manage.py`` commands; warnings are advice.

The ids come in families of a hundred, one family per subject (as django-cors-headers
numbers its own), listed in ``docs/checks.md``:

- ``anonauth.E1xx``/``W1xx``: the ``ANONAUTH_*`` settings, one error id per setting;
- ``anonauth.E2xx``/``W2xx``: middleware and sessions;
- ``anonauth.W3xx``: caches;
- ``anonauth.E4xx``/``W4xx``: django-allauth;
- ``anonauth.E5xx``/``W5xx``: authentication and security;
- ``anonauth.W6xx``: the project's models.

The ids of before the families (``anonauth.E001`` …) still silence their successors in
``SILENCED_SYSTEM_CHECKS`` (:data:`FORMER_IDS`).

``AppConfig.ready()`` registers the checks it names; the ones registered here with
``@register`` (:func:`check_allauth`, :func:`check_models`) come with this module,
which ``ready()`` imports.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import models
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.module_loading import import_string

from anonauth import metrics, sessions
from anonauth.conf import Settings, conf
from anonauth.link import CONFLICT_POLICIES, unknown_labels

MIDDLEWARE_PATH = "anonauth.middleware.GuestMiddleware"
AUTH_MIDDLEWARE_PATH = "django.contrib.auth.middleware.AuthenticationMiddleware"
SESSION_MIDDLEWARE_PATH = "django.contrib.sessions.middleware.SessionMiddleware"
UNSHARED_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
# anonauth.tasks takes its lock in django.core.cache.cache.
PURGE_LOCK_CACHE = "default"
# Request headers a client can send itself: as RATELIMIT_IP_META_KEY, spoofable.
FORWARDED_HEADERS = frozenset(
    {
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_REAL_IP",
        "HTTP_FORWARDED",
        "HTTP_X_CLIENT_IP",
        "HTTP_CLIENT_IP",
        "HTTP_TRUE_CLIENT_IP",
        "HTTP_X_CLUSTER_CLIENT_IP",
        "HTTP_X_ORIGINAL_FORWARDED_FOR",
        "HTTP_CF_CONNECTING_IP",
        "HTTP_FASTLY_CLIENT_IP",
    }
)
PROXIES_RECIPE = "https://anonauth.readthedocs.io/en/latest/recipes/proxies.html"
DEFAULT_ACCOUNT_ADAPTER = "allauth.account.adapter.DefaultAccountAdapter"
DEFAULT_SOCIALACCOUNT_ADAPTER = "allauth.socialaccount.adapter.DefaultSocialAccountAdapter"
RATE_PATTERN = re.compile(r"^\d+/\d*[smhd]$")
LABEL_PATTERN = re.compile(r"^\w+\.\w+\.\w+$")

# One id per setting for a value of the wrong type or out of range.
SETTING_IDS: dict[str, str] = {
    "ENABLED": "anonauth.E101",
    "BLOCKED_USER_AGENTS": "anonauth.E102",
    "REQUIRE_COOKIE": "anonauth.E103",
    "RATE_LIMIT": "anonauth.E104",
    "CAPTCHA_VERIFIER": "anonauth.E105",
    "SESSION_AGE": "anonauth.E106",
    "TOUCH_INTERVAL": "anonauth.E107",
    "MAX_AGE": "anonauth.E108",
    "EMAIL_DOMAIN": "anonauth.E109",
    "USERNAME_GENERATOR": "anonauth.E110",
    "DELETE_ON_LOGOUT": "anonauth.E111",
    "REGISTER_URL": "anonauth.E112",
    "LINK_REASSIGN": "anonauth.E113",
    "LINK_EXCLUDE": "anonauth.E114",
    "LINK_CONFLICTS": "anonauth.E115",
    "LINK_DELETE_GUEST": "anonauth.E116",
    "LINK_RATE_LIMIT": "anonauth.E117",
    "PURGE_SPARE": "anonauth.E118",
    "PURGE_BATCH_SIZE": "anonauth.E119",
    "PURGE_LOCK_TIMEOUT": "anonauth.E120",
    "AUDIT": "anonauth.E121",
    "UPGRADE_RATE_LIMIT": "anonauth.E122",
    "TRUSTED_PROXIES": "anonauth.E123",
    "PROBE_COOKIE_NAME": "anonauth.E124",
    "TRANSFER_CODE_AGE": "anonauth.E138",
    "TRANSFER_RATE_LIMIT": "anonauth.E139",
    "TRANSFER_REDEEM_RATE_LIMIT": "anonauth.E140",
    "TRANSFER_ENDS_FIRST_SESSION": "anonauth.E141",
    "PURGE_SHARDS": "anonauth.E125",
    "BEFORE_CREATE": "anonauth.E130",
    "LIVE_GUEST_CAP": "anonauth.E131",
    "EXPORT_SERIALIZERS": "anonauth.E129",
    "EXPORT_RATE_LIMIT": "anonauth.E132",
    "METRICS": "anonauth.E133",
    "METADATA_MAX_BYTES": "anonauth.E126",
    "METADATA_MAX_DEPTH": "anonauth.E127",
    "EMAIL_GENERATOR": "anonauth.E128",
}

# The ids of before the families, and what became of each.
FORMER_IDS: dict[str, tuple[str, ...]] = {
    "anonauth.E001": ("anonauth.E201",),
    "anonauth.E002": ("anonauth.E202",),
    "anonauth.E003": tuple(SETTING_IDS.values()),
    "anonauth.E004": ("anonauth.E150",),
    "anonauth.E005": ("anonauth.E501",),
    "anonauth.W001": ("anonauth.W201",),
    "anonauth.W002": ("anonauth.W301",),
    "anonauth.W003": ("anonauth.W501",),
    "anonauth.W004": ("anonauth.W102",),
}

COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")

Check = Callable[..., list[CheckMessage]]


def honouring_former_ids(check: Check) -> Check:
    """``check`` without the messages a former id in ``SILENCED_SYSTEM_CHECKS`` silences."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> list[CheckMessage]:
        silenced = {
            new for old in settings.SILENCED_SYSTEM_CHECKS for new in FORMER_IDS.get(old, ())
        }
        return [message for message in check(*args, **kwargs) if message.id not in silenced]

    return wrapper


# Middleware and sessions: E2xx, W2xx


@honouring_former_ids
def check_middleware(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E201: the middleware after AuthenticationMiddleware; anonauth.E202:
    sessions installed; anonauth.E203: SessionMiddleware installed; anonauth.W201: the
    middleware installed."""
    middleware = list(settings.MIDDLEWARE)
    errors: list[CheckMessage] = []
    if "django.contrib.sessions" not in settings.INSTALLED_APPS and settings.SESSION_ENGINE in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        errors.append(
            Error(
                "anonauth needs sessions: add 'django.contrib.sessions' to INSTALLED_APPS.",
                id="anonauth.E202",
            )
        )
    if not _contains_subclass(SESSION_MIDDLEWARE_PATH, middleware):
        errors.append(
            Error(
                f"'{SESSION_MIDDLEWARE_PATH}' is not in MIDDLEWARE: a guest lives in its "
                "session, so no guest could be created or signed in.",
                hint=f"Add it before '{AUTH_MIDDLEWARE_PATH}'.",
                id="anonauth.E203",
            )
        )
    if MIDDLEWARE_PATH not in middleware:
        errors.append(
            Warning(
                f"'{MIDDLEWARE_PATH}' is not in MIDDLEWARE: guest_allowed views "
                "will not create guests.",
                hint=f"Add it after '{AUTH_MIDDLEWARE_PATH}'.",
                id="anonauth.W201",
            )
        )
    elif AUTH_MIDDLEWARE_PATH not in middleware or middleware.index(
        MIDDLEWARE_PATH
    ) < middleware.index(AUTH_MIDDLEWARE_PATH):
        errors.append(
            Error(
                f"'{MIDDLEWARE_PATH}' must come after '{AUTH_MIDDLEWARE_PATH}' in MIDDLEWARE.",
                id="anonauth.E201",
            )
        )
    return errors


def _contains_subclass(class_path: str, candidate_paths: Iterable[str]) -> bool:
    """Whether one of the dotted paths names ``class_path`` or a subclass of it."""
    wanted = import_string(class_path)
    for path in candidate_paths:
        try:
            candidate = import_string(path)
        except ImportError:
            continue  # Django reports a middleware that does not import
        if isinstance(candidate, type) and issubclass(candidate, wanted):
            return True
    return False


# Authentication and security: E5xx, W5xx


@honouring_former_ids
def check_backends(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E501: a backend in AUTHENTICATION_BACKENDS can load a guest (get_user)."""
    try:
        sessions.guest_backend()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="anonauth.E501")]
    except ImportError:
        return []  # Django's own checks and the login itself report a bad path
    return []


@honouring_former_ids
def check_security(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.W501: Argon2 is the first password hasher (used when guests upgrade);
    anonauth.W502: the rate limits' client address is no header a client can forge."""
    warnings: list[CheckMessage] = []
    if not settings.PASSWORD_HASHERS or "Argon2" not in settings.PASSWORD_HASHERS[0]:
        warnings.append(
            Warning(
                "The first of PASSWORD_HASHERS is not Argon2; upgraded guests' passwords "
                "are hashed with it.",
                hint="Put 'django.contrib.auth.hashers.Argon2PasswordHasher' first.",
                id="anonauth.W501",
            )
        )
    warnings.extend(_ip_key_warnings())
    return warnings


def _ip_key_warnings() -> list[CheckMessage]:
    key = getattr(settings, "RATELIMIT_IP_META_KEY", None)
    rate_limited = conf.RATE_LIMIT is not None or conf.LINK_RATE_LIMIT is not None
    if not (rate_limited and isinstance(key, str) and key.upper() in FORWARDED_HEADERS):
        return []
    return [
        Warning(
            f"RATELIMIT_IP_META_KEY = {key!r} takes the rate limits' client address from "
            "a request header, which any client can send itself: a forged address escapes "
            "ANONAUTH_RATE_LIMIT and ANONAUTH_LINK_RATE_LIMIT, or uses up someone else's.",
            hint="Use a callable that takes the address your own proxy added (with "
            "X-Forwarded-For, the last entry), or silence this warning if your proxy "
            f"overwrites the header and Django is reachable only through it: {PROXIES_RECIPE}",
            id="anonauth.W502",
        )
    ]


# Caches: W3xx


@honouring_former_ids
def check_caches(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.W301: the rate limit counts in a cache that several processes share;
    anonauth.W302: so does the Celery purge's lock, when the rate limit's cache is shared."""
    warnings: list[CheckMessage] = []
    rate_cache = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    rate_backend = _cache_backend(rate_cache)
    if conf.RATE_LIMIT is not None and rate_backend in UNSHARED_CACHES:
        warnings.append(
            Warning(
                f"ANONAUTH_RATE_LIMIT counts in the cache {rate_cache!r} ({rate_backend}), "
                "which each process keeps to itself.",
                hint="Use a shared cache such as Redis or Memcached in production "
                "(RATELIMIT_USE_CACHE names the cache).",
                id="anonauth.W301",
            )
        )
    lock_backend = _cache_backend(PURGE_LOCK_CACHE)
    if (
        rate_backend
        and rate_backend not in UNSHARED_CACHES
        and lock_backend in UNSHARED_CACHES
        and importlib.util.find_spec("celery") is not None
    ):
        warnings.append(
            Warning(
                f"The Celery task anonauth.purge_anonymous takes its lock in the cache "
                f"{PURGE_LOCK_CACHE!r} ({lock_backend}), which each process keeps to itself, "
                f"while the rate limits count in the shared cache {rate_cache!r}: two "
                "workers' purges would run at the same time.",
                hint=f"Make CACHES[{PURGE_LOCK_CACHE!r}] a shared cache (Redis, Memcached), "
                "or run the purge from one process only (manage.py purge_anonymous).",
                id="anonauth.W302",
            )
        )
    return warnings


def _cache_backend(name: str) -> str:
    backend: str = settings.CACHES.get(name, {}).get("BACKEND", "")
    return backend


# The ANONAUTH_* settings: E1xx, W1xx


@honouring_former_ids
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E1xx (``SETTING_IDS``): a setting of the wrong type or value (one id each);
    anonauth.E150: a dotted path that does not import; anonauth.E151: ANONAUTH_MAX_AGE
    not longer than ANONAUTH_TOUCH_INTERVAL; anonauth.E134: ANONAUTH_METRICS = True
    without prometheus-client; anonauth.W101: an ``ANONAUTH_*`` name that
    is no setting; anonauth.W102: a link label that is no relation to the user model."""
    errors: list[CheckMessage] = [
        _type_error(name, problem) for name, problem in _setting_problems() if problem is not None
    ]
    if not errors:
        errors.extend(_max_age_errors())
    errors.extend(_import_errors())
    errors.extend(_metrics_errors())
    warnings = _unknown_name_warnings()
    if not errors:
        warnings.extend(_unknown_label_warnings())
    return errors + warnings


def short_cutoff_problem(older_than: timedelta) -> str | None:
    """Why purging the guests not seen for ``older_than`` would purge active ones, or
    None. ``last_seen`` is written at most once per ``ANONAUTH_TOUCH_INTERVAL``, so a
    guest browsing right now may have one almost that old (or a little older)."""
    interval = conf.TOUCH_INTERVAL
    if _positive_int(interval, allow_zero=True) is not None:
        return None  # anonauth.E107 reports it
    if older_than > timedelta(seconds=interval):
        return None
    return (
        f"is not longer than ANONAUTH_TOUCH_INTERVAL ({interval} seconds): guests are "
        "seen only once per that interval, so guests active right now would be purged"
    )


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
        ("UPGRADE_RATE_LIMIT", _rate_problem(conf.UPGRADE_RATE_LIMIT)),
        ("TRUSTED_PROXIES", _positive_int(conf.TRUSTED_PROXIES, allow_zero=True)),
        ("PROBE_COOKIE_NAME", _cookie_name_problem(conf.PROBE_COOKIE_NAME)),
        ("TRANSFER_CODE_AGE", _positive_int(conf.TRANSFER_CODE_AGE)),
        ("TRANSFER_RATE_LIMIT", _rate_problem(conf.TRANSFER_RATE_LIMIT)),
        ("TRANSFER_REDEEM_RATE_LIMIT", _rate_problem(conf.TRANSFER_REDEEM_RATE_LIMIT)),
        (
            "TRANSFER_ENDS_FIRST_SESSION",
            _expect(conf.TRANSFER_ENDS_FIRST_SESSION, bool, "a bool"),
        ),
        ("PURGE_SHARDS", _positive_count(conf.PURGE_SHARDS)),
        ("BEFORE_CREATE", _optional_str(conf.BEFORE_CREATE)),
        ("LIVE_GUEST_CAP", _optional_count(conf.LIVE_GUEST_CAP)),
        ("EXPORT_SERIALIZERS", _export_serializers_problem(conf.EXPORT_SERIALIZERS)),
        ("EXPORT_RATE_LIMIT", _rate_problem(conf.EXPORT_RATE_LIMIT)),
        ("METRICS", _metrics_problem(conf.METRICS)),
        ("METADATA_MAX_BYTES", _metadata_bytes_problem(conf.METADATA_MAX_BYTES)),
        ("METADATA_MAX_DEPTH", _positive_count(conf.METADATA_MAX_DEPTH)),
        ("EMAIL_GENERATOR", _expect(conf.EMAIL_GENERATOR, str, "a dotted path")),
    ]


def _metadata_bytes_problem(value: Any) -> str | None:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    return None if ok else "a number of bytes (0: no metadata), or None (no cap)"


def _cookie_name_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not COOKIE_NAME.match(value):
        return "a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
    return None


def _type_error(name: str, problem: str) -> Error:
    return Error(f"ANONAUTH_{name} must be {problem}.", id=SETTING_IDS[name])


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


def _optional_count(value: Any) -> str | None:
    return None if value is None else _positive_count(value)


def _max_age_problem() -> str | None:
    raw = getattr(settings, "ANONAUTH_MAX_AGE", timedelta(days=30))
    if isinstance(raw, timedelta):
        return None if raw > timedelta(0) else "a positive timedelta or number of seconds"
    return _positive_int(raw)


def _max_age_errors() -> list[CheckMessage]:
    problem = short_cutoff_problem(conf.MAX_AGE)
    if problem is None:
        return []
    return [
        Error(
            f"ANONAUTH_MAX_AGE ({int(conf.MAX_AGE.total_seconds())} seconds) {problem}.",
            hint="Make ANONAUTH_MAX_AGE longer, or ANONAUTH_TOUCH_INTERVAL shorter.",
            id="anonauth.E151",
        )
    ]


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
    """Guests' addresses are ``<username>@<domain>``: the domain must make them valid."""
    problem = "a domain name such as 'guest.invalid'"
    if not isinstance(value, str) or "." not in value:
        return problem
    try:
        validate_email(f"x@{value}")
    except ValidationError:
        return f"{problem}, which makes valid addresses (not {value!r})"
    return None


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


def _export_serializers_problem(value: Any) -> str | None:
    """A dict of model label to the dotted path of a callable or a DRF serializer."""
    shape = 'a dict of model label ("app_label.ModelName") to a dotted path'
    if not isinstance(value, Mapping):
        return shape
    for label, path in value.items():
        if not (isinstance(label, str) and isinstance(path, str)):
            return f"{shape} (not {label!r}: {path!r})"
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            return f"{shape} ({label!r} is no model)"
        try:
            target = import_string(path)
        except ImportError as error:
            return f"{shape} that imports ({path!r} does not: {error})"
        if not callable(target):
            return f"{shape} of a callable or a serializer class ({path!r} is neither)"
    return None


def _unknown_name_warnings() -> list[CheckMessage]:
    """anonauth.W101: an ``ANONAUTH_*`` setting anonauth does not read (a typo?)."""
    known = [name for name, attr in vars(Settings).items() if isinstance(attr, property)]
    warnings: list[CheckMessage] = []
    for name in sorted(dir(settings)):
        suffix = name.removeprefix("ANONAUTH_")
        if suffix == name or suffix in known:
            continue
        close = difflib.get_close_matches(suffix, known, n=1)  # the prefix would match all
        hint = f"Did you mean ANONAUTH_{close[0]}?" if close else "See anonauth's settings."
        warnings.append(
            Warning(
                f"{name} is not an anonauth setting: anonauth ignores it.",
                hint=hint,
                id="anonauth.W101",
            )
        )
    return warnings


def _unknown_label_warnings() -> list[CheckMessage]:
    """anonauth.W102: a configured label that names no relation to the user model."""
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
            id="anonauth.W102",
        )
        for name, labels in configured
        for label in unknown_labels(labels)
    ]


def _metrics_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) or value == "auto" else 'True, False or "auto"'


def _metrics_errors() -> list[CheckMessage]:
    """anonauth.E134: ``ANONAUTH_METRICS = True`` without prometheus-client."""
    if conf.METRICS is not True or metrics.available():
        return []
    return [
        Error(
            "ANONAUTH_METRICS is True but prometheus-client is not installed.",
            hint="pip install 'anonauth[metrics]', or set ANONAUTH_METRICS = \"auto\".",
            id="anonauth.E134",
        )
    ]


def _import_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    dotted = ("USERNAME_GENERATOR", "EMAIL_GENERATOR", "CAPTCHA_VERIFIER", "PURGE_SPARE")
    for name in (*dotted, "BEFORE_CREATE"):
        path = getattr(conf, name)
        if not isinstance(path, str):
            continue
        try:
            import_string(path)
        except ImportError as error:
            errors.append(
                Error(f"ANONAUTH_{name} = {path!r} does not import: {error}", id="anonauth.E150")
            )
    return errors


# django-allauth: E4xx, W4xx


@register(Tags.urls)
@honouring_former_ids
def check_allauth(**kwargs: Any) -> list[CheckMessage]:
    """anonauth.E401: anonauth's social adapter needs its account adapter;
    anonauth.W401: ``account_signup`` is routed to anonauth's guest-aware view."""
    if not (apps.is_installed("allauth.account") and apps.is_installed("allauth.socialaccount")):
        return []  # anonauth's allauth adapters need both
    from anonauth.contrib.allauth.adapters import AccountAdapter, SocialAccountAdapter

    account = _setting_class("ACCOUNT_ADAPTER", DEFAULT_ACCOUNT_ADAPTER)
    social = _setting_class("SOCIALACCOUNT_ADAPTER", DEFAULT_SOCIALACCOUNT_ADAPTER)
    ours = [_subclass(account, AccountAdapter), _subclass(social, SocialAccountAdapter)]
    messages: list[CheckMessage] = []
    if ours[1] and not ours[0]:
        messages.append(
            Error(
                "SOCIALACCOUNT_ADAPTER is anonauth's but ACCOUNT_ADAPTER "
                f"({getattr(settings, 'ACCOUNT_ADAPTER', DEFAULT_ACCOUNT_ADAPTER)}) is not: "
                "a guest's social login would fail with a server error.",
                hint="Set ACCOUNT_ADAPTER = 'anonauth.contrib.allauth.AccountAdapter' "
                "(or a subclass).",
                id="anonauth.E401",
            )
        )
    if any(ours):
        messages.extend(_signup_url_warnings())
    return messages


def _setting_class(name: str, default: str) -> type | None:
    try:
        found = import_string(getattr(settings, name, default))
    except (ImportError, AttributeError):  # AttributeError: not a dotted path
        return None  # allauth fails on it with its own message
    return found if isinstance(found, type) else None


def _subclass(cls: type | None, base: type) -> bool:
    return cls is not None and issubclass(cls, base)


def _signup_url_warnings() -> list[CheckMessage]:
    from anonauth.contrib.allauth.views import SignupView

    try:
        url = reverse("account_signup")
        view = resolve(url).func
    except (NoReverseMatch, Resolver404):
        return []  # no signup page (allauth's HEADLESS_ONLY)
    view_class = getattr(view, "view_class", None)
    if isinstance(view_class, type) and issubclass(view_class, SignupView):
        return []
    name = f"{view.__module__}.{getattr(view_class or view, '__qualname__', view)}"
    return [
        Warning(
            f"The signup page {url} is {name}, not anonauth's: allauth sends a guest, who "
            "is signed in, away from it, so guests cannot sign up.",
            hint="Route 'account_signup' to anonauth.contrib.allauth.views.SignupView "
            'before include("allauth.urls").',
            id="anonauth.W401",
        )
    ]


# The project's models: W6xx


@register(Tags.models)
@honouring_former_ids
def check_models(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """anonauth.W601: a ``DO_NOTHING`` foreign key to the user model."""
    if app_configs is None:
        all_models: Iterable[type[models.Model]] = apps.get_models()
    else:
        all_models = [model for app in app_configs for model in app.get_models()]
    return [
        Warning(
            "A foreign key to the user model with on_delete=DO_NOTHING: the purge cannot "
            "delete a guest a row points at (the database refuses the delete, or the row is "
            "left pointing at nobody).",
            hint="Use CASCADE, SET_NULL or PROTECT, or delete the rows before the guest.",
            obj=field,
            id="anonauth.W601",
        )
        for model in all_models
        for field in model._meta.local_fields
        if _do_nothing_to_user(field)
    ]


def _do_nothing_to_user(field: Any) -> bool:
    if not (field.many_to_one or field.one_to_one):
        return False
    if field.remote_field.on_delete is not models.DO_NOTHING:
        return False
    target = field.remote_field.model
    label = target if isinstance(target, str) else target._meta.concrete_model._meta.label
    return bool(label.lower() == settings.AUTH_USER_MODEL.lower())
