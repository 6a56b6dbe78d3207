"""The burst benchmark's django-guest-user side: the same settings without anonauth, with
``guest_user`` installed as its documentation says (the app, ``GuestBackend`` last)."""

from __future__ import annotations

from tests.benchmarks.burst_settings import *  # noqa: F403
from tests.benchmarks.burst_settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [
    "tests.benchmarks.burst_apps.ShopModelsConfig" if app == "example_project.shop" else app
    for app in INSTALLED_APPS
    if app != "anonauth"
] + ["guest_user"]
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("anonauth.")]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guest_user.backends.GuestBackend",
]
ROOT_URLCONF = "tests.benchmarks.burst_guestuser_urls"
