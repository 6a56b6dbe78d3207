"""The guest flag: a user is a guest iff a :class:`Guest` row points at it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# As long as Django's own session keys (``AbstractBaseSession.session_key``).
SESSION_KEY_MAX_LENGTH = 40


class Guest(models.Model):
    """Marks a user as a guest and records its activity.

    ``last_seen`` is written at most once per ``ANONAUTH_TOUCH_INTERVAL``; staleness
    (and so purging) is measured from it. ``creation_key`` is a digest of the cookie
    the visitor carried when the guest was created: concurrent requests with the same
    cookie collide on it, so exactly one guest is created for them. ``session_key``
    names the guest's server-side session so a purge can delete it with the guest.
    ``metadata`` is the JSON object the guest was signed in with
    (:mod:`anonauth.metadata`): data for the project, never a credential.

    The three keys are only ever compared for equality, so each has one plain btree
    index (``Meta``), not a field's ``db_index``/``unique``, which on PostgreSQL adds a
    second, ``varchar_pattern_ops`` index for ``LIKE`` queries nobody runs.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="anonauth_guest",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now, db_index=True)
    creation_key = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    session_key = models.CharField(
        max_length=SESSION_KEY_MAX_LENGTH, blank=True, default="", editable=False
    )
    # A keyed hash of the network the guest was created from (ANONAUTH_LIVE_GUEST_CAP),
    # never the address; NULL (not "") when the cap is off: no value shared by all rows.
    network_key = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, editable=False
    )
    # The database default too: code that predates the column (a rolling deploy) still
    # inserts guests.
    metadata = models.JSONField(
        _("metadata"), default=dict, db_default={}, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("guest")
        verbose_name_plural = _("guests")
        constraints = [
            models.UniqueConstraint(fields=["creation_key"], name="anonauth_guest_creation_key"),
        ]
        indexes = [
            models.Index(fields=["session_key"], name="anonauth_guest_session_key"),
            models.Index(fields=["network_key"], name="anonauth_guest_network_key"),
        ]

    def __str__(self) -> str:
        return str(self.user)


# The guest flag as cached on a user instance (``user.anonauth_guest``), through the
# relation's own cache methods: ``is_guest`` asks the database at most once per instance.
FLAG_UNKNOWN: Any = object()


def _flag_relation() -> Any:
    return Guest._meta.get_field("user").remote_field  # the reverse one-to-one


def cached_guest_flag(user: Any) -> Any:
    """The cached ``Guest`` row of ``user``, ``None`` if known not to be a guest, or
    :data:`FLAG_UNKNOWN`."""
    return _flag_relation().get_cached_value(user, default=FLAG_UNKNOWN)


def cache_guest_flag(user: Any, guest: Guest | None) -> None:
    """Remember on ``user`` that it is ``guest``'s user (``None``: not a guest)."""
    _flag_relation().set_cached_value(user, guest)


def forget_guest_flag(user: Any) -> None:
    """Forget the cached flag: the next ``is_guest(user)`` asks the database."""
    relation = _flag_relation()
    if relation.is_cached(user):
        relation.delete_cached_value(user)


class AuditEvent(models.Model):
    """One guest lifecycle event, without personal data: what happened, when, how often.

    Written from anonauth's signals when ``ANONAUTH_AUDIT`` is on; a purge batch is one
    event with its ``count``. Feeds the admin's guest activity page.
    """

    CREATED = "created"
    UPGRADED = "upgraded"
    LINKED = "linked"
    DELETED = "deleted"
    PURGED = "purged"
    TRANSFERRED = "transferred"
    KINDS = [
        (CREATED, _("created")),
        (UPGRADED, _("upgraded")),
        (LINKED, _("linked")),
        (DELETED, _("deleted")),
        (PURGED, _("purged")),
        (TRANSFERRED, _("transferred")),
    ]

    kind = models.CharField(_("event"), max_length=16, choices=KINDS)
    method = models.CharField(_("method"), max_length=32, blank=True)
    count = models.PositiveIntegerField(_("guests"), default=1)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("guest event")
        verbose_name_plural = _("guest events")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.count} {self.kind} at {self.at:%Y-%m-%d %H:%M}"


class TransferCode(models.Model):
    """A short, single-use code that signs another device in as the same guest.

    Only a keyed HMAC of the code is stored (``digest``), so the table does not reveal
    live codes. The row goes with its guest (upgrade, link, delete, purge: the ``Guest``
    row's cascade) and when the code is redeemed; expired rows are deleted whenever a
    code is issued or redeemed. ``session_key`` names the issuing device's session, which
    ``ANONAUTH_TRANSFER_ENDS_FIRST_SESSION`` ends on redemption.
    """

    guest = models.ForeignKey(
        Guest, on_delete=models.CASCADE, related_name="transfer_codes", verbose_name=_("guest")
    )
    digest = models.CharField(max_length=64, editable=False)
    session_key = models.CharField(
        max_length=SESSION_KEY_MAX_LENGTH, blank=True, default="", editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("transfer code")
        verbose_name_plural = _("transfer codes")
        # Looked up by equality only: one unique btree index (see Guest).
        constraints = [models.UniqueConstraint(fields=["digest"], name="anonauth_transfer_digest")]

    def __str__(self) -> str:
        return f"transfer code of {self.guest_id} until {self.expires_at:%Y-%m-%d %H:%M}"
