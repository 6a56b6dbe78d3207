"""``ANONAUTH_BEFORE_CREATE`` hooks for the tests."""

from __future__ import annotations

from django.http import HttpRequest

from anonauth.exceptions import CreationRefused

# The requests the recording hook was asked about (tests clear it).
SEEN: list[HttpRequest] = []


def refuse_beta(request: HttpRequest) -> None:
    """Refuse clients that send ``X-Beta: no``, with a code and status of their own."""
    SEEN.append(request)
    if request.headers.get("X-Beta") == "no":
        raise CreationRefused("Closed beta.", code="closed_beta", status=451)


def broken(request: HttpRequest) -> None:
    raise RuntimeError("the hook's own bug")
