"""View decorators: ``guest_allowed`` and ``registered_user_required``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url

from anonauth.conf import conf
from anonauth.guests import is_guest

GUEST_ALLOWED_ATTR = "anonauth_guest_allowed"

V = TypeVar("V", bound=Callable[..., Any] | type)


def guest_allowed(view: V) -> V:
    """Mark a view as one that creates a guest for a visitor who has no account.

    Works on function views, Django class-based views and DRF views (classes, or
    ``@api_view`` functions with this decorator above ``@api_view``). The
    ``GuestMiddleware`` creates the guest before the view runs; when an admission
    gate refuses, the visitor stays anonymous and the view decides what to show.
    """
    setattr(view, GUEST_ALLOWED_ATTR, True)
    return view


def is_guest_allowed(view_func: Callable[..., Any]) -> bool:
    """Whether the resolved ``view_func`` (or its class) is marked ``guest_allowed``."""
    if getattr(view_func, GUEST_ALLOWED_ATTR, False):
        return True
    view_class = getattr(view_func, "view_class", None)
    return bool(getattr(view_class, GUEST_ALLOWED_ATTR, False))


def registered_user_required(view: V) -> V:
    """Let only registered users in: guests and anonymous visitors are turned away.

    Pages redirect to ``ANONAUTH_REGISTER_URL`` (default ``LOGIN_URL``) with
    ``?next=``; DRF views answer 401/403 through the ``IsRegisteredUser`` permission.
    """
    drf_class = _drf_view_class(view)
    if drf_class is not None:
        from anonauth.permissions import IsRegisteredUser

        drf_class.permission_classes = [*drf_class.permission_classes, IsRegisteredUser]
        return view
    if isinstance(view, type):
        view.dispatch = _require_registered(view.dispatch, method=True)  # type: ignore[attr-defined]
        return view
    return _require_registered(view)  # type: ignore[return-value]


def _drf_view_class(view: Any) -> Any:
    try:
        from rest_framework.views import APIView
    except ImportError:  # pragma: no cover - DRF is a dependency
        return None
    candidate = view if isinstance(view, type) else getattr(view, "cls", None)
    if isinstance(candidate, type) and issubclass(candidate, APIView):
        return candidate
    return None


def _require_registered(func: Callable[..., Any], *, method: bool = False) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request: HttpRequest = args[1] if method else args[0]
        user = request.user
        if user.is_authenticated and not is_guest(user):
            return func(*args, **kwargs)
        return _turn_away(request)

    return wrapper


def _turn_away(request: HttpRequest) -> HttpResponse:
    url = resolve_url(conf.REGISTER_URL or settings.LOGIN_URL)
    return HttpResponseRedirect(f"{url}?{urlencode({'next': request.get_full_path()})}")
