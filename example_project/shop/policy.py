"""The shop's creation hook (``ANONAUTH_BEFORE_CREATE``): a new guest keeps the campaign
its visitor came with (``?utm_campaign=`` on any page, noted in the session by
:func:`note_campaign`) as its metadata; and its guest address generator
(``ANONAUTH_EMAIL_GENERATOR``)."""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest

from anonauth.conf import conf

CAMPAIGN_KEY = "utm_campaign"
MAX_CAMPAIGN_LENGTH = 64


def note_campaign(request: HttpRequest) -> None:
    """Remember the ``?utm_campaign=`` of a visitor who is not signed in yet."""
    campaign = request.GET.get(CAMPAIGN_KEY, "")[:MAX_CAMPAIGN_LENGTH]
    if campaign and not request.user.is_authenticated:
        request.session[CAMPAIGN_KEY] = campaign


def before_create(request: HttpRequest) -> dict[str, Any] | None:
    """Allow every guest; store the noted campaign with it (beside what an API client
    sent, ``request.anonauth.metadata``)."""
    campaign = request.session.get(CAMPAIGN_KEY) or request.GET.get(CAMPAIGN_KEY, "")
    if not campaign:
        return None  # allowed, with the client's metadata as it is
    sent = request.anonauth.metadata  # type: ignore[attr-defined]
    return {**sent, CAMPAIGN_KEY: campaign[:MAX_CAMPAIGN_LENGTH]}


def guest_email(*, max_length: int) -> str:
    """The shop's ``ANONAUTH_EMAIL_GENERATOR``: ``shopper-…@shop.<ANONAUTH_EMAIL_DOMAIN>``.
    Asked only by a user model that needs an email (the demo's ``auth.User`` does not)."""
    return f"shopper-{secrets.token_hex(8)}@shop.{conf.EMAIL_DOMAIN}"
