"""anonauth's own signal receivers, connected in ``AnonAuthConfig.ready()``."""

from __future__ import annotations

import logging
from typing import Any

from anonauth import db, sessions
from anonauth.conf import conf
from anonauth.exceptions import DeletionBlocked
from anonauth.guests import SAFE_METHODS, delete_guest, is_guest
from anonauth.link import link_at_sign_in, link_attempted

logger = logging.getLogger("anonauth")


def delete_guest_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A guest that logs out can never sign in again: with ``ANONAUTH_DELETE_ON_LOGOUT``
    it is deleted with its data (the session itself is flushed by ``logout()``).

    Only on a logout with an unsafe method (a POST): a GET logout (allauth's
    ``ACCOUNT_LOGOUT_ON_GET``, a project's own view) can come from any link or image
    on another site, so it signs the guest out and keeps its data for the purge; so
    does a logout without a request method. Nor when the logout is a step of signing
    into an account the guest was linked into (or failed to be: then its data waits,
    intact, for the purge). A guest that other data protects (``PROTECT``,
    ``RESTRICT``, ``DO_NOTHING``: :class:`anonauth.deletion.Plan`) is kept and logged;
    the logout goes on."""
    if not (conf.DELETE_ON_LOGOUT and is_guest(user)) or link_attempted(request):
        return
    method = str(getattr(request, "method", None) or "").upper()
    if not method or method in SAFE_METHODS:
        logger.info("anonauth: guest %s logged out (%s) and was kept", user.pk, method or "-")
        return
    try:
        delete_guest(user)
    except DeletionBlocked as blocked:
        # Other data protects it: the logout goes on, the purge reports the guest.
        logger.warning(
            "anonauth: guest %s logged out and was kept: %s", user.pk, blocked.blocked_by
        )


def link_guest_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """When a guest's session ends in ``login()`` of another user, link the guest into it.

    The guest is the one whose session the login replaced
    (:func:`anonauth.sessions.replaced_guest_id`), whichever session object the login
    path used. A failed link never breaks the login: the guest and its data stay, and
    the error is logged.
    """
    if request is None or link_attempted(request):
        return
    guest_id = sessions.replaced_guest_id(request)
    if guest_id is None or str(guest_id) == str(user.pk):
        return  # (a guest signing into a guest is refused by link_guest itself)
    guest = db.users().filter(pk=guest_id).first()
    if guest is not None:
        link_at_sign_in(guest, user, request)
