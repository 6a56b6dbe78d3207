"""allauth's email machinery for upgrades that do not go through allauth's own forms.

``anonauth.upgrade.upgrade_guest`` (the API's ``upgrade/``) calls
:func:`register_upgraded_email` when ``allauth.account`` is installed, so that the new
address is known to allauth like a signup's: an ``EmailAddress`` row (primary,
unverified), the verification mail unless ``ACCOUNT_EMAIL_VERIFICATION = "none"``, and
with ``"mandatory"`` the visitor signed out (the session keeps its data) until the
address is confirmed, as after allauth's own signup.
"""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.models import EmailAddress
from django.http import HttpRequest

from anonauth import sessions


def register_upgraded_email(request: HttpRequest, user: Any) -> None:
    """Give the upgraded ``user``'s email an allauth ``EmailAddress`` and verify it."""
    email = getattr(user, user.get_email_field_name(), "")
    if not email:
        return
    method = account_settings.EMAIL_VERIFICATION
    verify = method != account_settings.EmailVerificationMethod.NONE
    address = EmailAddress.objects.add_email(request, user, email, confirm=verify, signup=True)
    if not address.primary:
        address.set_as_primary()
    if method == account_settings.EmailVerificationMethod.MANDATORY and not address.verified:
        sessions.sign_out_keeping_data(request)
