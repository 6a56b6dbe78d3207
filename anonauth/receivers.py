"""anonauth's own signal receivers, connected in ``AnonAuthConfig.ready()``."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model

from anonauth.conf import conf
from anonauth.exceptions import NotGuest
from anonauth.guests import FLUSHED_GUEST_ATTR, delete_guest, is_guest
from anonauth.link import link_guest

logger = logging.getLogger("anonauth")


def delete_guest_on_logout(sender: Any, user: Any, **kwargs: Any) -> None:
    """A guest that logs out can never sign in again: with ``ANONAUTH_DELETE_ON_LOGOUT``
    it is deleted with its data (the session itself is flushed by ``logout()``)."""
    if conf.DELETE_ON_LOGOUT and is_guest(user):
        delete_guest(user)


def link_guest_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """When a guest's session ends in ``login()`` of another user, link the guest into it.

    ``GuestMiddleware`` noted the guest when ``login()`` flushed its session. A failed
    link never breaks the login: the guest and its data stay, and the error is logged.
    """
    guest_id = getattr(request, FLUSHED_GUEST_ATTR, None)
    if guest_id is None or str(guest_id) == str(user.pk) or is_guest(user):
        return
    if getattr(request, "anonauth_link_result", None) is not None:
        return  # the link endpoint linked already
    guest = get_user_model()._base_manager.filter(pk=guest_id).first()
    if guest is None:
        return
    try:
        link_guest(guest, user, request=request)
    except NotGuest:
        return  # upgraded, linked or purged meanwhile: nothing to merge
    except Exception:
        logger.exception(
            "anonauth: linking guest %s into user %s failed; the guest and its data are kept",
            guest_id,
            user.pk,
        )
