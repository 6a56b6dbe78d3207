"""A CAPTCHA verifier for the tests: the client passes by sending ``X-Captcha: ok``."""

from __future__ import annotations

from django.http import HttpRequest


def verify(request: HttpRequest) -> bool:
    return request.headers.get("X-Captcha") == "ok"


NAMES: list[str] = []


def scripted_username(*, max_length: int) -> str:
    """Username generator driven by ``NAMES`` (tests fill it)."""
    return NAMES.pop(0)


def too_long_username(*, max_length: int) -> str:
    return "x" * (max_length + 1)
