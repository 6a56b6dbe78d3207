"""Continuing on another device: a guest's short, single-use transfer code.

:func:`issue` gives the signed-in guest a code (8 characters of :data:`ALPHABET`, shown
``ABCD-EFGH``) valid for ``ANONAUTH_TRANSFER_CODE_AGE`` seconds; only a keyed HMAC of it
is stored. :func:`redeem` signs another device in as that guest, in a new session; the
first device stays signed in unless ``ANONAUTH_TRANSFER_ENDS_FIRST_SESSION``.

Both are rate-limited through :func:`anonauth.guests.check_rate`: issuing per guest and
per network, redeeming (every attempt, so guessing is counted) per network. A code is
dead once used, expired, or when its guest is no longer a guest: the ``Guest`` row's
cascade takes the code with it on upgrade, link, delete and purge.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from anonauth import audit, db, observe, sessions
from anonauth.conf import conf
from anonauth.exceptions import (
    AlreadyAuthenticated,
    AnonAuthError,
    InvalidTransferCode,
    NotGuest,
    RateLimited,
)
from anonauth.guests import check_rate, is_guest
from anonauth.models import AuditEvent, TransferCode

# No 0/O, 1/I/L, U/V look-alikes: 29 symbols, 29**8 (about 5e11) codes.
ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
LENGTH = 8
GROUP = 4
DIGEST_SALT = "anonauth.transfer"
ISSUE_RATE_GROUP = "anonauth.transfer_issue"
REDEEM_RATE_GROUP = "anonauth.transfer_redeem"
RATE_LIMITED_MESSAGE = _("Too many transfer code requests from here; try again later.")
ISSUE_ATTEMPTS = 5  # digest collisions are astronomically rare; this bounds the retries


@dataclass(frozen=True)
class IssuedCode:
    """A code as its guest sees it once: ``code`` (plain, ungrouped) and ``expires_at``."""

    code: str
    expires_at: datetime

    @property
    def grouped(self) -> str:
        """The code as shown to people: ``ABCD-EFGH``."""
        return group(self.code)


def group(code: str) -> str:
    """``code`` in groups of four joined by ``-`` (``ABCDEFGH`` -> ``ABCD-EFGH``)."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalise(text: str) -> str | None:
    """The code a person typed (any case, spaces and dashes ignored), or ``None`` if it
    cannot be one; no query."""
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code


def digest(code: str) -> str:
    """The stored form of ``code``: an HMAC keyed by ``SECRET_KEY`` (hex SHA-256)."""
    return salted_hmac(DIGEST_SALT, code, algorithm="sha256").hexdigest()


def issue(request: HttpRequest) -> IssuedCode:
    """A new transfer code for the guest signed in on ``request``.

    Raises :class:`NotGuest` for anyone else, ``RateLimited`` over
    ``ANONAUTH_TRANSFER_RATE_LIMIT`` (per guest and per network). The guest's earlier
    codes and every expired code are deleted: a guest has one live code at a time.
    Logged on ``anonauth.transfer``, issued or refused.
    """
    try:
        issued = _issue(request)
    except AnonAuthError as error:
        observe.transfer_refused(request, "issue", error.code)
        raise
    observe.transfer_issued(request.user.pk, conf.TRANSFER_CODE_AGE)
    return issued


def _issue(request: HttpRequest) -> IssuedCode:
    user: Any = request.user
    if not user.is_authenticated or not is_guest(user):
        raise NotGuest()
    rate = conf.TRANSFER_RATE_LIMIT
    _check_rate(request, ISSUE_RATE_GROUP, rate)
    _check_rate(request, ISSUE_RATE_GROUP, rate, key=f"guest:{user.pk}")
    now = timezone.now()
    expires_at = now + timedelta(seconds=conf.TRANSFER_CODE_AGE)
    session_key = request.session.session_key or ""
    for _attempt in range(ISSUE_ATTEMPTS):  # pragma: no branch - returns or raises
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        try:
            with db.atomic():
                _delete_stale(now, user.pk)
                _codes().create(
                    guest_id=user.pk,
                    digest=digest(code),
                    session_key=session_key,
                    expires_at=expires_at,
                )
        except IntegrityError:  # another live code has this digest: draw again
            continue
        return IssuedCode(code, expires_at)
    raise IntegrityError("no free transfer code")  # pragma: no cover - 29**8 codes


def redeem(request: HttpRequest, text: str) -> Any:
    """Sign ``request``'s client in as the guest whose code ``text`` is; return the guest.

    Every attempt counts against ``ANONAUTH_TRANSFER_REDEEM_RATE_LIMIT`` for the client's
    network (``RateLimited``). A client signed in already (guest or not) is refused with
    :class:`AlreadyAuthenticated`: its own guest would be left behind. A malformed,
    unknown, used or expired code, or one whose guest is gone, raises
    :class:`InvalidTransferCode`. Of concurrent redemptions of one code exactly one wins:
    the code's row is deleted under the guest's locks, and only one DELETE finds it.
    Logged on ``anonauth.transfer``, redeemed or refused.
    With ``ANONAUTH_AUDIT`` a ``transferred`` event is written in the same transaction.
    """
    try:
        user = _redeem(request, text)
    except AnonAuthError as error:
        observe.transfer_refused(request, "redeem", error.code)
        raise
    observe.transfer_redeemed(user.pk, ended_first_session=conf.TRANSFER_ENDS_FIRST_SESSION)
    return user


def _redeem(request: HttpRequest, text: str) -> Any:
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        raise AlreadyAuthenticated()
    _check_rate(request, REDEEM_RATE_GROUP, conf.TRANSFER_REDEEM_RATE_LIMIT)
    code = normalise(text)
    with db.atomic():
        row = _claim(code)
        user = db.users().get(pk=row.guest_id)
        sessions.start_transferred_session(request, user)
        if conf.TRANSFER_ENDS_FIRST_SESSION:
            _end_first_device(row, user, request.session.session_key or "")
        audit.record(AuditEvent.TRANSFERRED)
    return user


def _check_rate(request: HttpRequest, group: str, rate: str | None, key: str | None = None) -> None:
    """:func:`anonauth.guests.check_rate`, refusing in words about transfer codes."""
    try:
        check_rate(request, group=group, rate=rate, key=key)
    except RateLimited as error:
        raise RateLimited(RATE_LIMITED_MESSAGE, retry_after=error.retry_after) from error


def _claim(code: str | None) -> TransferCode:
    """Take the live code ``code`` (deleting it) or raise :class:`InvalidTransferCode`.

    The lock order of every guest path: the user row, the ``Guest`` row, then the code."""
    now = timezone.now()
    row = None if code is None else _codes().filter(digest=digest(code)).first()
    if row is None or row.expires_at <= now or not db.lock_guest(row.guest_id):
        raise InvalidTransferCode()
    deleted, _ = _codes().filter(pk=row.pk, expires_at__gt=now).delete()
    if not deleted:  # another redemption took it first
        raise InvalidTransferCode()
    return row


def _end_first_device(row: TransferCode, user: Any, new_key: str) -> None:
    """``ANONAUTH_TRANSFER_ENDS_FIRST_SESSION``: end the issuing device's session and the
    one the guest row names (after the commit); the guest row names the new one."""
    rows = db.guests().filter(user_id=user.pk)
    keys = [row.session_key, *rows.values_list("session_key", flat=True)]
    rows.update(session_key=new_key)
    db.on_commit(lambda: sessions.end_sessions([key for key in keys if key != new_key]))


def _codes() -> QuerySet[TransferCode]:
    return TransferCode.objects.using(db.alias())


def _delete_stale(now: datetime, guest_id: Any) -> None:
    """Delete every expired code and the guest's earlier ones (one DELETE)."""
    _codes().filter(Q(expires_at__lte=now) | Q(guest_id=guest_id)).delete()
