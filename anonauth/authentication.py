"""DRF authentication classes.

- :class:`SessionTokenAuthentication`: app clients' ``X-Session-Token`` header, for the
  project's own DRF views (and so in their OpenAPI schema).
- :class:`GuestCreation`: what ``@guest_allowed`` adds to a DRF view, last among its
  authenticators. A guest is created only once DRF has authenticated the request and
  none of the view's own classes recognised a client: a request with credentials
  (``Authorization``, a valid session) is never turned into a guest, a rejected one
  (a bad token, a failed CSRF check) writes nothing.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from anonauth import sessions
from anonauth.guests import SAFE_METHODS, ensure_guest, is_guest


class SessionTokenAuthentication(BaseAuthentication):
    """Authenticate an app client by the session its ``X-Session-Token`` header names.

    ``GuestMiddleware`` loads that session in place of the cookie's; this class lets a
    DRF view accept it (no CSRF check: a browser cannot send the header cross-site)
    and documents it in the schema. Put it before ``SessionAuthentication``.
    """

    def authenticate(self, request: Request) -> tuple[Any, str] | None:
        token = request._request.headers.get(sessions.SESSION_TOKEN_HEADER)
        user = getattr(request._request, "user", None)
        if not token or user is None or not user.is_authenticated:
            return None
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return sessions.SESSION_TOKEN_HEADER


class GuestCreation(BaseAuthentication):
    """Create and sign in a guest when no other authenticator recognised the client.

    The lazy path's gates apply (:func:`anonauth.guests.ensure_guest`); a cookie client's
    unsafe request must pass Django's CSRF check first (403 otherwise, nothing written).
    When a gate refuses, the request stays anonymous and the view's permissions decide.
    A guest already signed in by the session is recognised; a registered user signed
    in by the session only if one of the view's own classes accepts sessions.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        django_request = request._request
        if request.method not in SAFE_METHODS and django_request.COOKIES:
            SessionAuthentication().enforce_csrf(request)
        user = ensure_guest(django_request)
        # The guest's identity lives in its session, so the guest is let in by it; a
        # registered user's session is not, on a view whose own classes did not accept it.
        return (user, None) if user.is_authenticated and is_guest(user) else None
