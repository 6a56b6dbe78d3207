"""Settings of the example shop. SQLite by default; ``DATABASE_URL`` for PostgreSQL,
``REDIS_URL`` for a shared cache, ``CELERY_BROKER_URL`` for real Celery workers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url
import django
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "anonauth",
    "example_project.shop",
]

# The OpenAPI schema (/api/schema/) and its Swagger UI (/api/docs/), when the ``openapi``
# extra is installed (the dev extras are). The UI's JavaScript is served from the
# sidecar package's static files: no CDN.
if all(importlib.util.find_spec(name) for name in ("drf_spectacular", "drf_spectacular_sidecar")):
    INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
    REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    SPECTACULAR_SETTINGS = {
        "TITLE": "anonauth",
        "DESCRIPTION": "Guest users: sign in, upgrade, link, delete.",
        "VERSION": "1",
        "SERVE_INCLUDE_SCHEMA": False,
        "SCHEMA_PATH_PREFIX": "/auth/anonymous/",
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "anonauth.middleware.GuestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'example.sqlite3'}")
    )
}

REDIS_URL = os.environ.get("REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
if not REDIS_URL:
    # One process in the demo: a local-memory cache is fine for its rate limits.
    SILENCED_SYSTEM_CHECKS = ["anonauth.W301"]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if django.VERSION >= (6, 1):
    # Django 6.1's email configuration (the EMAIL_* settings are deprecated): the demo
    # prints its emails on the console.
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "/static/"

# Celery runs tasks in the web process unless a broker is configured.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_TASK_ALWAYS_EAGER = "CELERY_BROKER_URL" not in os.environ
CELERY_TASK_EAGER_PROPAGATES = True

# Purge guests not seen for ANONAUTH_MAX_AGE every night at 03:30 (run `celery -A
# example_project beat` beside a worker). Without a broker the task runs eagerly in
# the calling process: `python manage.py shell -c "from anonauth.tasks import
# purge_anonymous; print(purge_anonymous.delay().get())"`.
CELERY_BEAT_SCHEDULE = {
    "anonauth-purge-stale-guests": {
        "task": "anonauth.purge_anonymous",
        "schedule": crontab(hour=3, minute=30),
    },
}

# At most 50 live guests per network (IPv4 /24, IPv6 /64): past it a visitor browses on
# anonymously and the page says why (docs/policy.md).
ANONAUTH_LIVE_GUEST_CAP = 50

# "Download my data" (GET auth/anonymous/export/): the cart with its items, not only its id.
ANONAUTH_EXPORT_SERIALIZERS = {"shop.Cart": "example_project.shop.export.cart"}
# Prometheus metrics when prometheus-client is installed (`pip install anonauth[metrics]`),
# scraped at http://127.0.0.1:8000/metrics (docs/observability.md). A real site serves
# that URL only where Prometheus reaches it.
ANONAUTH_METRICS = "auto"

# anonauth's events on the console: refusals (anonauth.gates), upgrades, links, purge
# batches and transfer codes, with their structured fields and no personal data.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"event": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "event"}},
    "loggers": {
        "anonauth": {"handlers": ["console"], "level": "INFO"},
        "anonauth.gates": {"level": "INFO"},
        "anonauth.upgrade": {"level": "INFO"},
        "anonauth.link": {"level": "INFO"},
        "anonauth.purge": {"level": "INFO"},
        "anonauth.transfer": {"level": "INFO"},
    },
}
# A new guest keeps the ?utm_campaign= its visitor came with as its metadata, shown on
# the shop page and carried over to the account (docs/metadata.md).
ANONAUTH_BEFORE_CREATE = "example_project.shop.policy.before_create"

# Guests' synthetic addresses, for a user model that needs an email (this demo's
# auth.User does not, so its guests keep an empty one): shopper-…@shop.guest.invalid.
ANONAUTH_EMAIL_GENERATOR = "example_project.shop.policy.guest_email"
