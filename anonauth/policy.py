"""Creation policy: the project's hook before a guest is created, and the cap on live
guests per network.

- ``ANONAUTH_BEFORE_CREATE`` names ``hook(request)``, asked on the lazy path and by the
  sign-in endpoint after the other gates. It refuses by raising :class:`GuestRefused`
  (or :class:`CreationRefused` with a code and status of its own); any other exception
  fails closed (:class:`BeforeCreateFailed`, logged). It may return a dict: the new
  guest's metadata (:mod:`anonauth.metadata`), in place of what the client sent
  (``request.anonauth.metadata``); invalid metadata fails closed too.
- ``ANONAUTH_LIVE_GUEST_CAP`` caps the guests still alive (not purged, upgraded or
  linked: their ``Guest`` row is gone then) per network: IPv4 /24, IPv6 /64, stored
  only as a keyed hash (``Guest.network_key``). Counted with one indexed query inside
  the creation's transaction, after a PostgreSQL advisory lock on the hash, so
  concurrent creations from one network queue and the cap holds across processes.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from anonauth import db, metadata, state
from anonauth.conf import conf
from anonauth.exceptions import (
    BeforeCreateFailed,
    GuestRefused,
    LiveGuestCapReached,
    MetadataInvalid,
)

logger = logging.getLogger("anonauth")

NETWORK_SALT = "anonauth.network"


def ask_before_create(request: HttpRequest) -> dict[str, Any]:
    """Ask ``ANONAUTH_BEFORE_CREATE`` (if set) whether a guest may be created; return
    the new guest's metadata: the dict the hook returned, else the client's
    (``request.anonauth.metadata``). Any other return value (``None``) only allows."""
    requested = state.of(request).metadata
    if conf.BEFORE_CREATE is None:
        return requested
    hook: Callable[[HttpRequest], Any] = import_string(conf.BEFORE_CREATE)
    try:
        answer = hook(request)
    except GuestRefused:
        raise
    except Exception as error:  # a broken hook refuses: fail closed, and say why in the log
        logger.exception("anonauth: ANONAUTH_BEFORE_CREATE raised")
        raise BeforeCreateFailed() from error
    if not isinstance(answer, dict):
        return requested
    try:
        return metadata.clean(answer)
    except MetadataInvalid as error:  # the project's bug, not the client's: fail closed
        logger.exception("anonauth: ANONAUTH_BEFORE_CREATE returned invalid metadata")
        raise BeforeCreateFailed() from error


def network_key(request: HttpRequest | None) -> str | None:
    """The keyed hash of the client's network (IPv4 /24, IPv6 /64), or ``None`` without
    a cap, a request or a client address."""
    if conf.LIVE_GUEST_CAP is None or request is None:
        return None
    from anonauth.guests import client_address  # guests imports this module

    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 64
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return salted_hmac(NETWORK_SALT, str(network), algorithm="sha256").hexdigest()


def reserve_network(
    key: str | None, creation_key: str | None, *, draw: tuple[str, list[Any]] | None = None
) -> Any:
    """Inside the creation's transaction: raise :class:`LiveGuestCapReached` if the
    network ``key`` already has ``ANONAUTH_LIVE_GUEST_CAP`` live guests.

    The guest a concurrent request of the same client just created (same
    ``creation_key``) is not counted: that request goes on to claim it. ``draw`` (the
    SQL that draws the new user's key, :func:`anonauth.inserts.key_draw`) is evaluated
    by the lock's statement, which saves the creation a round trip; the key drawn is
    returned (``None`` when there is no cap, or off PostgreSQL). A refused creation
    leaves that key unused, a gap in the sequence like a rolled-back insert's.
    """
    cap = conf.LIVE_GUEST_CAP
    if key is None or cap is None:
        return None
    drawn = db.advisory_xact_lock(f"network:{key}", also=draw)
    live = db.guests().filter(network_key=key)
    if creation_key is not None:
        live = live.exclude(creation_key=creation_key)
    if live.values("pk")[:cap].count() >= cap:
        raise LiveGuestCapReached()
    return drawn
