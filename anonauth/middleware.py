"""``GuestMiddleware``: lazy guest creation, the session-token header, activity touch."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from anonauth.decorators import is_guest_allowed
from anonauth.guests import PROBE_COOKIE, ensure_guest, touch, touch_due, watch_session

SESSION_TOKEN_HEADER = "X-Session-Token"

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


class GuestMiddleware:
    """Creates guests for ``guest_allowed`` views; place it after ``AuthenticationMiddleware``.

    Ordinary requests cost nothing: no query and no guest. The only database work is
    the guest creation itself (for marked views) and, for a guest's request, one
    ``last_seen`` UPDATE per ``ANONAUTH_TOUCH_INTERVAL``.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        use_session_token(request)
        watch_session(request)
        response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
        if touch_due(request):
            touch(request)
        set_probe_cookie(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        use_session_token(request)
        watch_session(request)
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        if touch_due(request):
            await sync_to_async(touch)(request)
        set_probe_cookie(request, response)
        return response

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> None:
        # Django runs this in a thread when the stack is async.
        if is_guest_allowed(view_func):
            ensure_guest(request)


def use_session_token(request: HttpRequest) -> None:
    """Authenticate an app client by its ``X-Session-Token`` header instead of a cookie.

    The header names the session like the cookie would; a browser cannot be made to
    send a custom header cross-site, so such requests are exempt from CSRF checks.
    """
    token = request.headers.get(SESSION_TOKEN_HEADER)
    if not token:
        return
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(token)
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]


def set_probe_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    """Let a visitor refused only for sending no cookie qualify on its next request."""
    refusal = getattr(request, "anonauth_refusal", None)
    if refusal is not None and refusal.code == "no_cookie":
        response.set_cookie(
            PROBE_COOKIE,
            secrets.token_urlsafe(16),  # random: it keys the creation race
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
        )
