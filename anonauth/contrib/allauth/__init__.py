"""django-allauth integration: a guest's signup or social login upgrades it in place.

Set ``ACCOUNT_ADAPTER = "anonauth.contrib.allauth.AccountAdapter"`` and
``SOCIALACCOUNT_ADAPTER = "anonauth.contrib.allauth.SocialAccountAdapter"``, and route
the signup URLs to :mod:`anonauth.contrib.allauth.views` (allauth turns signed-in
visitors, guests included, away from its own). See the README, "django-allauth".
"""

from __future__ import annotations

from anonauth.contrib.allauth.adapters import AccountAdapter, SocialAccountAdapter

__all__ = ["AccountAdapter", "SocialAccountAdapter"]
