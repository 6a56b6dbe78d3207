"""Template filters: ``{% load anonauth %}{{ user|is_guest }}``."""

from __future__ import annotations

from typing import Any

from django import template

from anonauth import guests

register = template.Library()


@register.filter
def is_guest(user: Any) -> bool:
    """Whether ``user`` is a guest."""
    return guests.is_guest(user)
