"""The test settings with django-allauth (account, socialaccount with the network-free
``dummy`` provider and Google, whose app tests/test_scenarios.py configures, headless)
and anonauth's adapters. Runs ``tests/test_allauth.py`` and ``tests/test_scenarios.py``."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.dummy",
    "allauth.socialaccount.providers.google",
    "allauth.headless",
]
MIDDLEWARE = [*MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ROOT_URLCONF = "tests.urls_allauth"

ACCOUNT_ADAPTER = "anonauth.contrib.allauth.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "anonauth.contrib.allauth.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"
SOCIALACCOUNT_EMAIL_VERIFICATION = "optional"
HEADLESS_FRONTEND_URLS = {
    "account_confirm_email": "/verify-email/{key}",
    "account_signup": "/signup",
}
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
