"""DRF permissions: ``IsGuest`` and ``IsRegisteredUser``."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from anonauth.guests import is_guest


class IsGuest(BasePermission):
    """Allow signed-in guests only."""

    message = _("This endpoint is for guest users only.")
    code = "not_guest"

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_guest(request.user)


class IsRegisteredUser(BasePermission):
    """Allow signed-in users that are not guests."""

    message = _("This endpoint requires a registered account.")
    code = "registration_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not is_guest(user))
