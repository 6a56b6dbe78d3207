"""``ANONAUTH_EMAIL_GENERATOR`` callables for the tests."""

from __future__ import annotations

from typing import Any

# The addresses the scripted generator hands out, in order (tests fill it), and the
# ``max_length`` each call was given.
EMAILS: list[Any] = []
CALLS: list[int] = []


def scripted_email(*, max_length: int) -> Any:
    CALLS.append(max_length)
    return EMAILS.pop(0)


def tenant_email(*, max_length: int) -> str:
    """A project's own scheme: a sequence number under a subdomain of the guest domain."""
    from django.contrib.auth import get_user_model

    return f"visitor-{get_user_model().objects.count() + 1}@shop.guest.invalid"
