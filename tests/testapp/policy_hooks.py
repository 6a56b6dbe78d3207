"""``ANONAUTH_BEFORE_CREATE`` hooks for the tests."""

from __future__ import annotations

from typing import Any

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


def campaign(request: HttpRequest) -> dict[str, Any] | None:
    """Store the ``?utm_campaign=`` a visitor came with, beside what the client sent."""
    SEEN.append(request)
    came_with = request.GET.get("utm_campaign")
    if came_with is None:
        return None
    return {**request.anonauth.metadata, "campaign": came_with}  # type: ignore[attr-defined]


def unstorable(request: HttpRequest) -> dict[str, Any]:
    return {"when": object()}


def allows(request: HttpRequest) -> bool:
    return True
