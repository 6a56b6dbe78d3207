from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template

from anonauth.guests import create_guest

pytestmark = pytest.mark.django_db

TEMPLATE = Template("{% load anonauth %}{% if user|is_guest %}guest{% else %}not guest{% endif %}")


def render(user: Any) -> str:
    return TEMPLATE.render(Context({"user": user}))


def test_is_guest_filter(member: Any) -> None:
    assert render(create_guest()) == "guest"
    assert render(member) == "not guest"
    assert render(AnonymousUser()) == "not guest"
