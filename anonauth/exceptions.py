"""One error hierarchy: every failure anonauth reports carries a machine-readable code.

The HTTP API maps the codes to statuses in one place (``anonauth.views.STATUS_BY_CODE``).
Each class's ``default_message`` is a lazy translation: it is rendered in the language
active when it is turned into text (the request's, under ``LocaleMiddleware``).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


class AnonAuthError(Exception):
    """Base class of anonauth's errors: a human ``message`` and a stable ``code``.

    ``message`` defaults to the class's ``default_message``; both may be lazy strings.
    """

    code = "error"
    default_message: str | Promise = _("The request could not be completed.")

    def __init__(self, message: str | Promise = "", code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def __str__(self) -> str:
        return str(self.message)


class GuestRefused(AnonAuthError):
    """Raised when no guest may be created for a request (base of the admission gates)."""

    code = "refused"
    default_message = _("No guest can be created for this request.")


class GuestsDisabled(GuestRefused):
    """Raised when guest users are turned off (``ANONAUTH_ENABLED = False``)."""

    code = "disabled"
    default_message = _("Guest users are disabled on this site.")


class ClientRefused(GuestRefused):
    """Raised on the lazy path for a client that cannot hold a guest session (a crawler,
    a HEAD request, no cookies); ``code`` names which."""

    code = "client_refused"
    default_message = _("This client cannot hold a guest session.")


class RateLimited(GuestRefused):
    """Raised when an address is over a rate limit; ``retry_after`` is in seconds."""

    code = "rate_limited"
    default_message = _("Too many guests were created from this address; try again later.")

    def __init__(self, message: str | Promise = "", *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CaptchaFailed(GuestRefused):
    """Raised when ``ANONAUTH_CAPTCHA_VERIFIER`` rejects the request."""

    code = "captcha_failed"
    default_message = _("The CAPTCHA check failed.")


class GuestUnavailable(GuestRefused):
    """Raised when the database failed while creating a guest; nothing was kept."""

    code = "unavailable"
    default_message = _("A guest could not be created right now; try again later.")


class CreationRefused(GuestRefused):
    """Raised by an ``ANONAUTH_BEFORE_CREATE`` hook to refuse a guest with a ``code`` of
    its own; the API answers it with ``status`` (a 4xx, 403 by default)."""

    code = "creation_refused"
    default_message = _("No guest can be created for this request.")

    def __init__(
        self, message: str | Promise = "", code: str | None = None, *, status: int = 403
    ) -> None:
        super().__init__(message, code)
        self.status = status if 400 <= status < 500 else 403  # a refusal is the client's


class BeforeCreateFailed(GuestRefused):
    """Raised when the ``ANONAUTH_BEFORE_CREATE`` hook raised an unexpected error: no
    guest is created (the hook fails closed), and the error is logged."""

    code = "before_create_failed"
    default_message = _("A guest could not be created right now; try again later.")


class LiveGuestCapReached(GuestRefused):
    """Raised when the client's network has ``ANONAUTH_LIVE_GUEST_CAP`` live guests."""

    code = "live_guest_cap"
    default_message = _("Too many guests are active from this network.")


class MetadataInvalid(AnonAuthError):
    """Raised for guest metadata that is not a JSON object of the accepted shape
    (:func:`anonauth.metadata.clean`): nothing is created."""

    code = "metadata_invalid"
    default_message = _("The metadata is not valid.")


class MetadataTooDeep(MetadataInvalid):
    """Raised for guest metadata nested deeper than ``ANONAUTH_METADATA_MAX_DEPTH``."""

    code = "metadata_too_deep"
    default_message = _("The metadata is nested too deeply.")


class MetadataTooLarge(MetadataInvalid):
    """Raised for guest metadata larger than ``ANONAUTH_METADATA_MAX_BYTES``."""

    code = "metadata_too_large"
    default_message = _("The metadata is too large.")


class AlreadyAuthenticated(AnonAuthError):
    """Raised when a registered user asks to sign in as a guest."""

    code = "already_authenticated"
    default_message = _("A registered user is already signed in.")


class NotGuest(AnonAuthError):
    """Raised when an operation for guests meets a user that is not (or no longer) one."""

    code = "not_guest"
    default_message = _("This operation is only for guest users.")


class DeletionBlocked(AnonAuthError):
    """Raised when a protecting relation (``PROTECT``, ``RESTRICT``, a constrained
    ``DO_NOTHING``) keeps a guest; ``blocked_by`` names it (for logs, not for clients)."""

    code = "deletion_blocked"
    default_message = _("The guest cannot be deleted: other data protects it.")

    def __init__(self, message: str | Promise = "", *, blocked_by: str = "") -> None:
        super().__init__(message)
        self.blocked_by = blocked_by


class LinkConflict(AnonAuthError):
    """Raised under the ``error`` policy of ``ANONAUTH_LINK_CONFLICTS``."""

    code = "link_conflict"
    default_message = _("The account already has data that cannot be merged with the guest's.")


class InvalidCredentials(AnonAuthError):
    """Raised by the link endpoint for a wrong login and password."""

    code = "invalid_credentials"
    default_message = _("The login or password is wrong.")


class InvalidEmail(AnonAuthError):
    """Raised by an upgrade for a malformed, too long or guest-domain address."""

    code = "invalid_email"
    default_message = _("This email address is not valid.")


class EmailInUse(AnonAuthError):
    """Raised by an upgrade to an address another account uses."""

    code = "email_in_use"
    default_message = _("This email address is already used by another account.")


class UsernameInUse(AnonAuthError):
    """Raised by an upgrade to a username another account uses."""

    code = "username_in_use"
    default_message = _("This username is already used by another account.")


class PasswordInvalid(AnonAuthError):
    """Raised by an upgrade whose password fails the password validators.

    ``messages`` holds each validator's message; the API returns them as its ``detail``.
    """

    code = "password_invalid"
    default_message = _("The password does not satisfy the password validators.")

    def __init__(self, messages: Sequence[str | Promise]) -> None:
        # One lazy string: the messages joined in the language active when it is shown.
        super().__init__(format_lazy(" ".join(["{}"] * len(messages)), *messages))
        self.messages = list(messages)


class LinkFailed(AnonAuthError):
    """The guest could not be merged into the account (a ``guest_linking`` receiver
    failed); nothing was changed and the guest is still signed in."""

    code = "link_failed"
    default_message = _("This guest could not be merged into the account; nothing was changed.")


class InvalidTransferCode(AnonAuthError):
    """Raised when a transfer code is malformed, unknown, used, expired, or belongs to a
    guest that is gone (upgraded, linked, deleted, purged): one answer for all, so a
    client learns nothing about other guests' codes."""

    code = "invalid_transfer_code"
    default_message = _("This transfer code is not valid (it may have expired or been used).")
