"""View decorators: ``guest_allowed``, ``guest_required`` and ``registered_user_required``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

from anonauth.conf import conf
from anonauth.guests import ais_guest, is_guest

GUEST_ALLOWED_ATTR = "anonauth_guest_allowed"

V = TypeVar("V", bound=Callable[..., Any] | type)


def guest_allowed(view: V) -> V:
    """Mark a view as one that creates a guest for a visitor who has no account.

    Works on function views (sync or async), Django class-based views and DRF views:
    ``APIView`` subclasses, generic views, ViewSets (router-built too) and ``@api_view``
    functions (with this decorator above ``@api_view``). For Django views
    ``GuestMiddleware`` creates the guest before the view runs. For DRF views the guest
    is created by DRF itself, after the view's own authentication classes
    (:class:`anonauth.authentication.GuestCreation`): a token or JWT user stays that
    user, and a request that fails CSRF creates nothing. When an admission gate refuses,
    the visitor stays anonymous and the view decides what to show.
    """
    drf_class = _drf_view_class(view)
    if drf_class is not None:
        _create_guests_in_drf(drf_class)
    setattr(view, GUEST_ALLOWED_ATTR, True)
    return view


def is_guest_allowed(view_func: Callable[..., Any]) -> bool:
    """Whether ``GuestMiddleware`` creates a guest for the resolved ``view_func``: a
    Django view (or class) marked ``guest_allowed``. DRF views create their own."""
    if _drf_view_class(view_func) is not None:
        return False
    if getattr(view_func, GUEST_ALLOWED_ATTR, False):
        return True
    view_class = getattr(view_func, "view_class", None)
    return bool(getattr(view_class, GUEST_ALLOWED_ATTR, False))


def _create_guests_in_drf(view_class: Any) -> None:
    """Append :class:`GuestCreation` to the DRF view's authenticators."""
    from anonauth.authentication import GuestCreation

    get_authenticators = view_class.get_authenticators
    if getattr(get_authenticators, GUEST_ALLOWED_ATTR, False):
        return

    @functools.wraps(get_authenticators)
    def with_guest_creation(self: Any) -> list[Any]:
        return [*get_authenticators(self), GuestCreation()]

    setattr(with_guest_creation, GUEST_ALLOWED_ATTR, True)
    view_class.get_authenticators = with_guest_creation


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
        is_async = bool(getattr(view, "view_is_async", False))
        view.dispatch = _require_registered(view.dispatch, method=True, is_async=is_async)  # type: ignore[attr-defined]
        return view
    return _require_registered(view)  # type: ignore[return-value]


def _drf_view_class(view: Any) -> Any:
    """The DRF view class of ``view`` (a class, an ``as_view()`` result, an
    ``@api_view`` function, a router-built ViewSet view), or ``None``."""
    from rest_framework.views import APIView

    candidate = view if isinstance(view, type) else getattr(view, "cls", None)
    if isinstance(candidate, type) and issubclass(candidate, APIView):
        return candidate
    return None


def _require_registered(
    func: Callable[..., Any], *, method: bool = False, is_async: bool | None = None
) -> Callable[..., Any]:
    return _gate(
        func,
        method=method,
        is_async=is_async,
        admits=lambda user: user.is_authenticated and not is_guest(user),
        aadmits=_aregistered,
        refuse=lambda request, user: _turn_away(request),
    )


async def _aregistered(user: Any) -> bool:
    return bool(user.is_authenticated) and not await ais_guest(user)


def _gate(
    func: Callable[..., Any],
    *,
    method: bool,
    is_async: bool | None,
    admits: Callable[[Any], bool],
    aadmits: Callable[[Any], Awaitable[bool]],
    refuse: Callable[[HttpRequest, Any], HttpResponse],
) -> Callable[..., Any]:
    """Wrap a view (``method``: a view method, the request second) so that it runs for the
    users ``admits`` (``aadmits`` in an async view) and answers ``refuse`` otherwise."""
    if is_async if is_async is not None else iscoroutinefunction(func):

        @functools.wraps(func)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            request: HttpRequest = args[1] if method else args[0]
            user = await request.auser()
            if await aadmits(user):
                return await func(*args, **kwargs)
            return refuse(request, user)

        return awrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request: HttpRequest = args[1] if method else args[0]
        user = request.user
        if admits(user):
            return func(*args, **kwargs)
        return refuse(request, user)

    return wrapper


def _turn_away(request: HttpRequest) -> HttpResponse:
    url = resolve_url(conf.REGISTER_URL or settings.LOGIN_URL)
    after = _come_back_to(request)
    return HttpResponseRedirect(f"{url}?{urlencode({'next': after})}" if after else url)


def _come_back_to(request: HttpRequest) -> str | None:
    """Where to send the visitor after signing in: the page itself for a GET; for a POST
    (which the browser would repeat as a GET, to a 405) the page it came from, if that
    is on this site."""
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    referer = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(referer)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def guest_required(view: V) -> V:
    """Let only guests in (django-guest-user's ``guest_user_required``, django-lazysignup's
    ``require_lazy_user``).

    The view is also :func:`guest_allowed`, so a visitor without an account gets a
    guest first. Registered users are sent to ``LOGIN_REDIRECT_URL`` (they already
    have an account); a visitor an admission gate refused gets a 403. DRF views answer
    403 through the ``IsGuest`` permission.
    """
    drf_class = _drf_view_class(view)
    if drf_class is not None:
        from anonauth.permissions import IsGuest

        drf_class.permission_classes = [*drf_class.permission_classes, IsGuest]
        return guest_allowed(view)
    if isinstance(view, type):
        is_async = bool(getattr(view, "view_is_async", False))
        view.dispatch = _require_guest(view.dispatch, method=True, is_async=is_async)  # type: ignore[attr-defined]
        return guest_allowed(view)
    return guest_allowed(_require_guest(view))  # type: ignore[return-value]


def _require_guest(
    func: Callable[..., Any], *, method: bool = False, is_async: bool | None = None
) -> Callable[..., Any]:
    return _gate(
        func,
        method=method,
        is_async=is_async,
        admits=is_guest,
        aadmits=ais_guest,
        refuse=lambda request, user: _not_a_guest(user),
    )


def _not_a_guest(user: Any) -> HttpResponse:
    if user.is_authenticated:
        return HttpResponseRedirect(resolve_url(settings.LOGIN_REDIRECT_URL))
    raise PermissionDenied
