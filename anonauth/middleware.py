"""``GuestMiddleware``: lazy guest creation, the session-token header, activity touch."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from anonauth import sessions, state
from anonauth.conf import conf
from anonauth.decorators import is_guest_allowed
from anonauth.guests import NO_COOKIE, PROBE_SALT, ensure_guest

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
        start(request)
        response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
        if (touch := sessions.pending_touch(request)) is not None:
            touch()
        finish(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        start(request)
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        if (touch := sessions.pending_touch(request)) is not None:
            await sync_to_async(touch)()
        finish(request, response)
        return response

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> None:
        # Django runs this in a thread when the stack is async.
        sessions.touch_before_view(request)
        if is_guest_allowed(view_func):
            ensure_guest(request)


def start(request: HttpRequest) -> None:
    """Before the view, for sync and async requests alike (no query): the per-request
    state, the session an app client names by header, and the watch for a login that
    replaces a guest's session."""
    state.of(request)
    sessions.use_session_token(request)
    sessions.note_guest_on_flush(request)


def finish(request: HttpRequest, response: HttpResponseBase) -> None:
    """After the view, for sync and async requests alike (no query)."""
    sessions.set_new_session_cookie(request, response)
    set_probe_cookie(request, response)


def set_probe_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    """Let a visitor refused only for sending no cookie qualify on its next request."""
    if state.of(request).refusal_code == NO_COOKIE:
        name = conf.PROBE_COOKIE_NAME
        response.set_signed_cookie(
            name,
            secrets.token_urlsafe(16),  # random and signed: it keys the creation race
            salt=PROBE_SALT,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE or name.startswith(("__Host-", "__Secure-")),
            httponly=True,
            path="/",
        )
