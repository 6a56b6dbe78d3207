"""The burst benchmark's side with no guest app: the same settings without anonauth."""

from __future__ import annotations

from tests.benchmarks.burst_settings import *  # noqa: F403
from tests.benchmarks.burst_settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [
    "tests.benchmarks.burst_apps.ShopModelsConfig" if app == "example_project.shop" else app
    for app in INSTALLED_APPS
    if app != "anonauth"
]
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("anonauth.")]
ROOT_URLCONF = "tests.benchmarks.burst_plain_urls"
