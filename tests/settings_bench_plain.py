"""The benchmark's baseline: the same project without anonauth (app and middleware)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [
    app
    for app in INSTALLED_APPS
    if app not in ("anonauth", "example_project.shop", "tests.testapp")
]
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("anonauth.")]
ROOT_URLCONF = "tests.benchmarks.urls"
