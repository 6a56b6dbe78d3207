"""One error hierarchy: every failure anonauth reports carries a machine-readable code.

The HTTP API maps the codes to statuses in one place (``anonauth.views.STATUS_BY_CODE``).
"""

from __future__ import annotations


class AnonAuthError(Exception):
    """Base class of anonauth's errors: a human message and a stable ``code``."""

    code = "error"

    def __init__(self, message: str = "", code: str | None = None) -> None:
        self.message = message or self.__doc__ or self.code
        if code is not None:
            self.code = code
        super().__init__(self.message)


class GuestRefused(AnonAuthError):
    """No guest may be created for this request."""

    code = "refused"


class GuestsDisabled(GuestRefused):
    """Guest users are disabled on this site."""

    code = "disabled"


class ClientRefused(GuestRefused):
    """This client cannot hold a guest session (a crawler, a HEAD request, no cookies)."""

    code = "client_refused"


class RateLimited(GuestRefused):
    """Too many guests were created from this address; try again later."""

    code = "rate_limited"

    def __init__(self, message: str = "", *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CaptchaFailed(GuestRefused):
    """The CAPTCHA check failed."""

    code = "captcha_failed"


class GuestUnavailable(GuestRefused):
    """A guest could not be created right now (the database failed); nothing was kept."""

    code = "unavailable"


class AlreadyAuthenticated(AnonAuthError):
    """A registered user is already signed in."""

    code = "already_authenticated"


class NotGuest(AnonAuthError):
    """This operation is only for guest users."""

    code = "not_guest"


class DeletionBlocked(AnonAuthError):
    """The guest cannot be deleted: other data protects it."""

    code = "deletion_blocked"


class LinkConflict(AnonAuthError):
    """The account already has data that cannot be merged with the guest's."""

    code = "link_conflict"


class InvalidCredentials(AnonAuthError):
    """The login or password is wrong."""

    code = "invalid_credentials"


class InvalidEmail(AnonAuthError):
    """Enter a valid email address."""

    code = "invalid_email"


class EmailInUse(AnonAuthError):
    """This email address is already used by another account."""

    code = "email_in_use"


class UsernameInUse(AnonAuthError):
    """This username is already used by another account."""

    code = "username_in_use"


class PasswordInvalid(AnonAuthError):
    """The password does not satisfy the password validators.

    ``messages`` holds each validator's message; the API returns them as its ``detail``.
    """

    code = "password_invalid"

    def __init__(self, messages: list[str]) -> None:
        super().__init__(" ".join(messages))
        self.messages = messages


class LinkFailed(AnonAuthError):
    """The guest could not be merged into the account (a ``guest_linking`` receiver
    failed); nothing was changed and the guest is still signed in."""

    code = "link_failed"
