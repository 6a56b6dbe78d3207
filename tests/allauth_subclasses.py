"""Projects' own subclasses of anonauth's allauth adapters and views, for
``tests/test_checks.py`` (imported by dotted path, only with allauth installed)."""

from __future__ import annotations

from anonauth.contrib.allauth import AccountAdapter, SocialAccountAdapter
from anonauth.contrib.allauth.views import SignupView


class ShopAccountAdapter(AccountAdapter):  # type: ignore[misc]
    pass


class ShopSocialAccountAdapter(SocialAccountAdapter):  # type: ignore[misc]
    pass


class ShopSignupView(SignupView):  # type: ignore[misc]
    pass
