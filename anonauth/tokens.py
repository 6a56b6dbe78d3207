"""What a client needs to go on after a response that changed who is signed in.

Sign-in, upgrade and link answer each kind of client in its own terms:

- cookie clients: nothing (``session_token`` is ``None``; the cookie is the credential);
- app clients on the session (``X-Session-Token``): the ``session_token`` to send from
  now on (upgrade and link give the session a new key);
- clients that authenticated by a JWT (djangorestframework-simplejwt): a new pair in
  ``tokens`` (``access``, ``refresh``) for the user they are now, with the ``is_guest``
  claim of :mod:`anonauth.contrib.simplejwt`;
- clients that authenticated by DRF's ``TokenAuthentication``: that user's ``token``
  (a new one after an upgrade; after a link the account's, the guest's being gone with
  the guest).
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.request import Request
from rest_framework.settings import api_settings

from anonauth import sessions


def credentials(user: Any, request: Request, *, rotate: bool = False) -> dict[str, Any]:
    """The credential entries of the response body for ``user`` on ``request``.

    ``rotate`` (an upgrade): a DRF Token client gets a new token, the guest's is deleted,
    as an upgraded session gets a new key.
    """
    authenticator = request.successful_authenticator
    if authenticator is None or isinstance(authenticator, SessionAuthentication):
        return {"session_token": sessions.session_token(request._request)}
    body: dict[str, Any] = {"session_token": None}
    if _is_jwt(authenticator):
        from anonauth.contrib.simplejwt import refresh_token_for

        refresh = refresh_token_for(user)
        body["tokens"] = {"access": str(refresh.access_token), "refresh": str(refresh)}
    elif isinstance(authenticator, TokenAuthentication):
        body["token"] = _drf_token(user, authenticator, rotate=rotate)
    return body


def token_authenticators() -> list[BaseAuthentication]:
    """The token schemes among the project's ``DEFAULT_AUTHENTICATION_CLASSES``: DRF's
    ``TokenAuthentication`` and simplejwt's JWT classes (and their subclasses), which
    anonauth's endpoints accept beside the session. Not Basic authentication: the link
    endpoint's rate limit is the only guard of a password there."""
    classes: list[type[BaseAuthentication]] = api_settings.DEFAULT_AUTHENTICATION_CLASSES  # type: ignore[assignment]
    return [cls() for cls in classes if issubclass(cls, TokenAuthentication) or _is_jwt_class(cls)]


def by_header(request: Request) -> bool:
    """Whether the client sent an ``Authorization`` header (which a browser never sends
    cross-site on its own). The header alone exempts nothing from the CSRF check: the
    request must also be authenticated by a token scheme (:func:`by_token`)."""
    return bool(request._request.headers.get("Authorization"))


def by_token(request: Request) -> bool:
    """Whether a token scheme of :func:`token_authenticators` (DRF's Token, simplejwt's
    JWT), not the session, authenticated ``request``."""
    authenticator = request.successful_authenticator
    return isinstance(authenticator, TokenAuthentication) or _is_jwt(authenticator)


def _is_jwt(authenticator: Any) -> bool:
    return _is_jwt_class(type(authenticator))


def _is_jwt_class(cls: type[Any]) -> bool:
    try:
        from rest_framework_simplejwt.authentication import JWTAuthentication
    except ImportError:  # pragma: no cover - the tests install simplejwt
        return False
    return issubclass(cls, JWTAuthentication)


def _drf_token(user: Any, authenticator: TokenAuthentication, *, rotate: bool) -> str:
    model: Any = authenticator.get_model()
    if rotate:
        model.objects.filter(user=user).delete()
    token, _created = model.objects.get_or_create(user=user)
    return str(token.key)
