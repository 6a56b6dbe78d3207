"""allauth's signup and login views, open to guests.

allauth turns signed-in visitors away from signup and login (a redirect for the form
views, 409 for headless), and a guest is signed in. These subclasses let a guest
through and behave like allauth's for everyone else: a guest's signup upgrades it in
place (the adapters), a guest's login links it into the account (anonauth's
``user_logged_in`` receiver). Route allauth's URLs to them, before
``include("allauth.urls")`` and ``include("allauth.headless.urls")`` (see the README).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from allauth import app_settings as allauth_settings
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.internal import flows
from allauth.account.mixins import RedirectAuthenticatedUserMixin
from allauth.account.views import LoginView as AllauthLoginView
from allauth.account.views import SignupView as AllauthSignupView
from allauth.account.views import confirm_login_code as allauth_confirm_login_code
from allauth.account.views import request_login_code as allauth_request_login_code
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.decorators import rate_limit
from allauth.headless.account.views import (
    ConfirmLoginCodeView as AllauthHeadlessConfirmLoginCodeView,
)
from allauth.headless.account.views import LoginView as AllauthHeadlessLoginView
from allauth.headless.account.views import (
    RequestLoginCodeView as AllauthHeadlessRequestLoginCodeView,
)
from allauth.headless.account.views import SignupView as AllauthHeadlessSignupView
from allauth.headless.base.response import AuthenticationResponse, ForbiddenResponse
from allauth.socialaccount.internal.flows.signup import get_pending_signup
from allauth.socialaccount.views import SignupView as AllauthSocialSignupView
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from anonauth.guests import is_guest

_sensitive = method_decorator(sensitive_post_parameters("password", "password1", "password2"))


class GuestsWelcomeMixin:
    """Skip allauth's redirect of signed-in visitors for guests only."""

    @method_decorator(login_not_required)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if is_guest(request.user):
            return self.dispatch_for_guest(request, *args, **kwargs)
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response

    def dispatch_for_guest(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # The next class after the redirecting mixin in allauth's view.
        response: HttpResponseBase = super(RedirectAuthenticatedUserMixin, self).dispatch(  # type: ignore[misc]
            request, *args, **kwargs
        )
        return response


def _guarded_entry(action: str) -> Any:
    """``dispatch_for_guest`` with what allauth's own ``dispatch`` adds (skipped for
    guests): its rate limit for ``action``, no caching, no passwords in error reports."""

    @method_decorator(rate_limit(action=action))
    @_sensitive
    @method_decorator(never_cache)
    def dispatch_for_guest(
        self: GuestsWelcomeMixin, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        return GuestsWelcomeMixin.dispatch_for_guest(self, request, *args, **kwargs)

    return dispatch_for_guest


class SignupView(GuestsWelcomeMixin, AllauthSignupView):  # type: ignore[misc]
    """allauth's signup page (``account_signup``); a guest's signup upgrades it."""

    dispatch_for_guest = _guarded_entry("signup")


class LoginView(GuestsWelcomeMixin, AllauthLoginView):  # type: ignore[misc]
    """allauth's login page (``account_login``); a guest's login links it into the account."""

    _dispatch_for_guest = _guarded_entry("login")

    def dispatch_for_guest(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if allauth_settings.SOCIALACCOUNT_ONLY and request.method != "GET":
            raise PermissionDenied()  # as allauth's own dispatch(): social logins only
        response: HttpResponseBase = self._dispatch_for_guest(request, *args, **kwargs)
        return response


class SocialSignupView(GuestsWelcomeMixin, AllauthSocialSignupView):  # type: ignore[misc]
    """allauth's social signup form (``socialaccount_signup``), shown when a social
    login needs more input (say an email the provider did not give)."""

    def dispatch_for_guest(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        sociallogin = get_pending_signup(request)
        if not sociallogin:  # as allauth's own dispatch() does
            return HttpResponseRedirect(reverse("account_login"))
        self.sociallogin = sociallogin
        return super().dispatch_for_guest(request, *args, **kwargs)


class HeadlessSignupView(AllauthHeadlessSignupView):  # type: ignore[misc]
    """allauth headless ``POST auth/signup`` (browser and app clients)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_guest(request.user):
            response: HttpResponseBase = super().post(request, *args, **kwargs)
            return response
        # allauth's post() without its 409 for signed-in visitors.
        if not get_account_adapter().is_open_for_signup(request):
            return ForbiddenResponse(request)  # type: ignore[no-any-return]
        user, response = self.input.try_save(request)
        if not response:
            with contextlib.suppress(ImmediateHttpResponse):
                response = flows.signup.complete_signup(request, user=user)
        return AuthenticationResponse.from_response(request, response)  # type: ignore[no-any-return]


class HeadlessLoginView(AllauthHeadlessLoginView):  # type: ignore[misc]
    """allauth headless ``POST auth/login``; a guest's login links it into the account."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_guest(request.user):
            response: HttpResponseBase = super().post(request, *args, **kwargs)
            return response
        # allauth's post() without its 409 for signed-in visitors.
        response = flows.login.perform_password_login(
            request, self.input.cleaned_data, self.input.login
        )
        return AuthenticationResponse.from_response(request, response)  # type: ignore[no-any-return]


class HeadlessGuestAsVisitorMixin:
    """For allauth headless sign-in steps: a guest is treated as a visitor (see
    :func:`guest_as_visitor`), inside allauth's own authentication of the request."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if is_guest(request.user):
            request.user = AnonymousUser()
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response


class HeadlessRequestLoginCodeView(
    HeadlessGuestAsVisitorMixin,
    AllauthHeadlessRequestLoginCodeView,  # type: ignore[misc]
):
    """allauth headless ``POST auth/code/request`` (browser and app clients), open to
    guests: the guest is answered as a visitor with a pending login (401), its session
    kept, so that confirming the code logs the account in and links the guest."""


class HeadlessConfirmLoginCodeView(
    HeadlessGuestAsVisitorMixin,
    AllauthHeadlessConfirmLoginCodeView,  # type: ignore[misc]
):
    """allauth headless ``POST auth/code/confirm``, open to guests (the login links the
    guest into the account)."""


def guest_as_visitor(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Let a guest into an allauth sign-in view as if it were an anonymous visitor.

    allauth turns signed-in visitors away from its sign-in steps; a guest is signed in,
    but has no account yet. The view sees an anonymous user while the session, and so
    the guest in it, stays: the ``login()`` at the end of the flow links the guest
    into the account like any other login.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if is_guest(request.user):
            request.user = AnonymousUser()
        return view(request, *args, **kwargs)

    return wrapper


#: allauth's login-by-code steps (``account_request_login_code``,
#: ``account_confirm_login_code``), open to guests.
request_login_code = guest_as_visitor(allauth_request_login_code)
confirm_login_code = guest_as_visitor(allauth_confirm_login_code)
