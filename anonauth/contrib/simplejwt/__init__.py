"""djangorestframework-simplejwt for guests: tokens that say whether their user is one.

Give a guest a JWT pair with :func:`refresh_token_for` (instead of
``RefreshToken.for_user``): both tokens carry an ``is_guest`` claim, as Supabase's carry
``is_anonymous``. Authenticate with simplejwt's own ``JWTAuthentication``;
``GuestMiddleware`` records the activity of token-authenticated guests, so they are not
purged while active. After an upgrade the user id stays the same, so the tokens keep
working; refresh them to get ``is_guest: false``.
"""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.tokens import RefreshToken

from anonauth.guests import is_guest

CLAIM = "is_guest"


def refresh_token_for(user: Any) -> RefreshToken:
    """A simplejwt refresh token for ``user`` (its access token too) with ``is_guest``."""
    token = RefreshToken.for_user(user)
    token[CLAIM] = is_guest(user)
    return token
