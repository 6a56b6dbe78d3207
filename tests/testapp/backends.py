"""A permission-only backend as Django's docs write one: a ``BaseBackend`` subclass, whose
inherited ``get_user()`` loads nobody."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend


class PermissionOnlyBackend(BaseBackend):
    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return False
