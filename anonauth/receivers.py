"""anonauth's own signal receivers, connected in ``AnonAuthConfig.ready()``."""

from __future__ import annotations

from typing import Any

from anonauth.conf import conf
from anonauth.guests import delete_guest, is_guest


def delete_guest_on_logout(sender: Any, user: Any, **kwargs: Any) -> None:
    """A guest that logs out can never sign in again: with ``ANONAUTH_DELETE_ON_LOGOUT``
    it is deleted with its data (the session itself is flushed by ``logout()``)."""
    if conf.DELETE_ON_LOGOUT and is_guest(user):
        delete_guest(user)
