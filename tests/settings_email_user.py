"""The test settings with a custom user model keyed by email and without a username."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.emailuser"]
AUTH_USER_MODEL = "emailuser.EmailUser"
