"""allauth adapters that upgrade the signed-in guest in place instead of creating a user.

Both go through :func:`anonauth.upgrade.upgrading`, so allauth's flows lock, check,
signal (``guest_upgraded`` with ``method="password"`` or ``"social"``) and carry the
session over exactly like :func:`anonauth.upgrade.upgrade_guest`.
"""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.internal.flows.manage_email import assess_unique_email
from allauth.account.models import Login
from allauth.account.utils import has_verified_email
from allauth.core import context
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthProcess
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse

from anonauth import db, sessions, state
from anonauth.guests import is_guest
from anonauth.link import can_log_in, link_at_sign_in
from anonauth.upgrade import PASSWORD, SOCIAL, email_in_use, upgrading

LOGIN_BY_CODE_STAGE = "allauth.account.stages.LoginByCodeStage"


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """allauth's account adapter, for a site with guests.

    - A guest's signup (form or headless) fills in the guest itself: same primary
      key, data kept, guest flag removed, ``guest_upgraded(method="password")``.
      The random guest username is replaced the way allauth names any new account
      (the form's username, or one generated from the email).
    - With ``ACCOUNT_EMAIL_VERIFICATION = "mandatory"`` the upgraded visitor is
      signed out (the session keeps its data) until the address is confirmed; with
      ``ACCOUNT_LOGIN_BY_CODE_REQUIRED``, until the code allauth mails is entered.
    - A guest upgrading through a social login is not signed out first.
    """

    def new_user(self, request: HttpRequest) -> Any:
        if is_guest(request.user):
            return _reload(request.user)
        return super().new_user(request)

    def save_user(
        self, request: HttpRequest, user: Any, form: BaseForm, commit: bool = True
    ) -> Any:
        if not (commit and is_guest(user)):
            return super().save_user(request, user, form, commit)
        with upgrading(user, request=request, method=PASSWORD):
            super().save_user(request, user, form, commit=True)
        return user

    def validate_unique_email(self, email: str) -> str:
        """Refuse (``email_taken``, on the form) an address that a guest's upgrade would
        refuse but allauth's own check lets through: another spelling of an address in
        use (IDNA or NFKC), or any address in use under
        ``ACCOUNT_PREVENT_ENUMERATION = "strict"``, which would make a second account
        with it (an upgrade in place cannot)."""
        email = super().validate_unique_email(email)
        guest = getattr(context.request, "user", None)
        if guest is not None and is_guest(guest) and _taken(email, guest):
            raise self.validation_error("email_taken")
        return email

    def pre_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse | None:
        upgraded_here = kwargs.get("signup") and sessions.signed_in_as(request, user)
        if upgraded_here and (self._must_verify(user, kwargs) or self._must_confirm_code(user)):
            sessions.sign_out_keeping_data(request)
        response: HttpResponse | None = super().pre_login(request, user, **kwargs)
        return response

    def logout(self, request: HttpRequest) -> None:
        if state.of(request).keep_signed_in:
            return  # a guest upgrading through a social login
        super().logout(request)

    def _must_confirm_code(self, user: Any) -> bool:
        """Whether allauth's login-by-code stage will ask this login for a code first
        (``ACCOUNT_LOGIN_BY_CODE_REQUIRED``), as it asks any new account's."""
        if LOGIN_BY_CODE_STAGE not in self.get_login_stages():
            return False
        return bool(self.is_login_by_code_required(Login(user=user, signup=True)))

    def _must_verify(self, user: Any, kwargs: dict[str, Any]) -> bool:
        mandatory = account_settings.EmailVerificationMethod.MANDATORY
        return bool(
            kwargs.get("email_verification") == mandatory
            and not has_verified_email(user, kwargs.get("email"))
        )


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    """allauth's social account adapter, for a site with guests.

    - A guest's social login (or "connect") with a social account that is new
      attaches the account to the guest and upgrades it in place
      (``guest_upgraded(method="social")``), taking name and email from the
      provider; the address is verified if the provider says so.
    - A guest's social login (or "connect") with an account that already belongs
      to a user calls :meth:`link_guest_into`, the hook where the guest is merged
      into that user, who is then signed in.
    - ``process="redirect"`` (authenticate with the provider, sign nobody in) leaves
      the guest as it is.
    """

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        super().pre_social_login(request, sociallogin)
        if not is_guest(request.user):
            return
        if sociallogin.state.get("process") == AuthProcess.REDIRECT:
            return  # allauth only authenticates with the provider: nobody signs in
        # A guest has no account to connect to: its "connect" is a sign-in (or a
        # signup, in place), and allauth only links or signs in for a login.
        sociallogin.state["process"] = AuthProcess.LOGIN
        if sociallogin.is_existing:
            self.link_guest_into(request.user, sociallogin.user, request)
            return
        _require_account_adapter(request)
        # allauth signs signed-in visitors out before a social login: not this one.
        state.of(request).keep_signed_in = True

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: Any) -> bool:
        """Not for a guest whose provider gives an address :func:`_taken` (allauth's
        social signup form then asks for another one, as for any address in use)."""
        allowed = bool(super().is_auto_signup_allowed(request, sociallogin))
        if allowed and is_guest(request.user) and sociallogin.email_addresses:
            return not _taken(sociallogin.email_addresses[0].email, request.user)
        return allowed

    def new_user(self, request: HttpRequest, sociallogin: Any) -> Any:
        # Never the guest: allauth looks the social account up with this unsaved user.
        return get_user_model()()

    def save_user(self, request: HttpRequest, sociallogin: Any, form: Any = None) -> Any:
        if not is_guest(request.user):
            return super().save_user(request, sociallogin, form)
        guest = _reload(request.user)
        with upgrading(guest, request=request, method=SOCIAL):
            self.adopt_social_user(guest, sociallogin.user)
            sociallogin.user = guest
            super().save_user(request, sociallogin, form)
        return guest

    def adopt_social_user(self, guest: Any, social_user: Any) -> None:
        """Copy onto ``guest`` what allauth filled in from the provider: the username
        (if the provider gives none, allauth generates one, as for any new account),
        and the email, first and last name when the provider gives them."""
        username_field = account_settings.USER_MODEL_USERNAME_FIELD
        if username_field:
            setattr(guest, username_field, getattr(social_user, username_field, ""))
        for name in (account_settings.USER_MODEL_EMAIL_FIELD, "first_name", "last_name"):
            value = getattr(social_user, name, None) if name else None
            if value:
                setattr(guest, name, value)

    def link_guest_into(self, guest: Any, user: Any, request: HttpRequest) -> None:
        """A guest signed in with a social account that belongs to ``user``.

        Called before allauth signs the guest out and ``user`` in: the guest is linked
        into ``user`` (:func:`anonauth.link.link_at_sign_in`: no new user, no orphaned
        guest; a failed link is logged, keeps the guest intact and lets the login on).

        Never into an inactive ``user``: allauth refuses that login (its "account
        inactive" page), so the guest is not linked and stays signed in with its data.
        """
        if not can_log_in(user):
            state.of(request).link_attempted = True
            state.of(request).keep_signed_in = True  # allauth's sign-out before the login
            return
        link_at_sign_in(_reload(guest), user, request)


def _reload(user: Any) -> Any:
    """A fresh instance of ``user`` for allauth to fill in: the request's own stays
    untouched if the signup fails. The guest flag comes in the same query."""
    model = user._meta.model
    return model._default_manager.using(db.alias()).select_related("anonauth_guest").get(pk=user.pk)


def _taken(email: str, guest: Any) -> bool:
    """Whether ``email`` is in use as a guest's upgrade sees it (:func:`email_in_use`)
    while allauth's check finds no conflict. Where allauth does find one, its own rules
    apply (an error, or with enumeration prevention its "account exists" mail)."""
    return bool(assess_unique_email(email) is True and email_in_use(email, exclude_pk=guest.pk))


def _require_account_adapter(request: HttpRequest) -> None:
    if not isinstance(get_account_adapter(request), AccountAdapter):
        raise ImproperlyConfigured(
            "SOCIALACCOUNT_ADAPTER = 'anonauth.contrib.allauth.SocialAccountAdapter' needs "
            "ACCOUNT_ADAPTER = 'anonauth.contrib.allauth.AccountAdapter' (or a subclass): "
            "allauth's own would sign the guest out before upgrading it."
        )
