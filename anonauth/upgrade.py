"""Upgrade in place: a guest becomes a full account with the same primary key.

:func:`upgrade_guest` is the core. :func:`upgrading` is the transaction around any
upgrade — the core's and the django-allauth adapters' — so that every path locks,
checks, signals and carries the session over the same way.

Locks are taken in anonauth's one order (:mod:`anonauth.db`): the user row, then the
``Guest`` row (deleted), then (PostgreSQL) an advisory lock on the new email address.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError
from django.db.models import Q
from django.http import HttpRequest
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django.views.decorators.debug import sensitive_variables

from anonauth import db, sessions, signals
from anonauth.conf import conf
from anonauth.exceptions import (
    AnonAuthError,
    EmailInUse,
    InvalidEmail,
    NotGuest,
    PasswordInvalid,
    UsernameInUse,
)
from anonauth.guests import check_rate, is_guest, model_field, under_guest_domain
from anonauth.models import Guest, cache_guest_flag, cached_guest_flag, forget_guest_flag

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    User = AbstractBaseUser

# ``guest_upgraded``'s ``method`` for each way of upgrading.
PASSWORD = "password"
SOCIAL = "social"

# ``guest_upgraded``'s method when a guest got a usable password some other way.
PASSWORD_SET = "password_set"
UPGRADE_RATE_GROUP = "anonauth.upgrade"
# Fields ``upgrade_guest`` sets itself, which ``**fields`` may not name.
RESERVED_FIELDS = frozenset({"password", "last_login", "is_superuser", "is_staff", "is_active"})


@sensitive_variables("password")
def upgrade_guest(
    user: Any,
    *,
    email: str,
    password: str,
    request: HttpRequest | None = None,
    **fields: Any,
) -> User:
    """Turn the guest ``user`` into a full account in place and return it.

    The primary key and every related row stay; the guest flag goes; ``email`` is
    normalized and must be well formed and unused by any other account (compared
    case-insensitively, in allauth's ``EmailAddress`` table too when allauth is
    installed); ``password`` must pass ``AUTH_PASSWORD_VALIDATORS`` and is hashed
    with the first of ``PASSWORD_HASHERS``. ``fields`` sets other model fields (say
    ``first_name``); a guest's random username stays unless ``username`` is among
    them. With ``request`` — the guest's own — the visitor stays signed in with the
    session's data, under a new session key and CSRF token and the normal session
    lifetime; with django-allauth installed the address gets allauth's ``EmailAddress``
    and verification (:mod:`anonauth.contrib.allauth.emails`). ``guest_upgraded``
    (``method="password"``) is sent after commit.

    With ``request``, attempts are rate limited per guest and per client address
    (``ANONAUTH_UPGRADE_RATE_LIMIT``), and everything cheap is checked before the
    password is hashed (the hash is slow and memory-hungry by design).

    Raises :class:`NotGuest`, :class:`InvalidEmail`, :class:`EmailInUse`,
    :class:`UsernameInUse`, :class:`PasswordInvalid` or :class:`RateLimited`, having
    written nothing.
    """
    if not is_guest(user):
        raise NotGuest()
    if request is not None:
        check_upgrade_rate(request, user)
    model = user._meta.model
    email_field = model.get_email_field_name()
    _check_field_names(model, fields, email_field)
    values = {**fields, email_field: clean_email(email, model)}
    if email_in_use(values[email_field], exclude_pk=user.pk):
        raise EmailInUse()  # checked again under a lock below; this spares the hash
    check_password(password, _candidate(user, values))
    values["password"] = make_password(password)  # outside the lock: hashing is slow
    previous = {name: getattr(user, name) for name in values}
    try:
        with upgrading(user, request=request, method=PASSWORD):
            _check_username_unique(user, fields)
            _assign(user, values)
            user.save(update_fields=list(values))
    except IntegrityError as error:  # a writer that takes no lock got there first
        _assign(user, previous)
        raise _conflict(user, values) or error from error
    except AnonAuthError:
        _assign(user, previous)
        raise
    password_validation.password_changed(password, user)
    if request is not None and apps.is_installed("allauth.account"):
        from anonauth.contrib.allauth.emails import register_upgraded_email

        register_upgraded_email(request, user)
    return user  # type: ignore[no-any-return]


@contextmanager
def upgrading(
    user: Any, *, request: HttpRequest | None = None, method: str = PASSWORD
) -> Iterator[Any]:
    """The transaction of an upgrade, around the caller's changes to ``user``.

    Locks the user row and removes the guest flag (:class:`NotGuest` if it is
    already gone: a concurrent upgrade won), yields ``user`` for the caller to set
    and save its fields, then checks under a lock on the address that its email is
    used by no other account (:class:`EmailInUse`), so that of two upgrades racing
    for one address exactly one commits. After commit ``guest_upgraded`` is sent (with
    the guest's ``metadata``, read under the lock before its ``Guest`` row went) and,
    with ``request``, the visitor goes on as the account
    (:func:`anonauth.sessions.continue_as_account`).
    An exception rolls everything back and leaves ``user`` a guest.
    """
    model = user._meta.model
    try:
        with db.atomic():
            metadata = _remove_guest_flag(user)
            yield user
            _check_email_unique(user)
            signals.send_after_commit(
                signals.guest_upgraded,
                model,
                user=user,
                request=request,
                method=method,
                metadata=metadata,
            )
    except BaseException:
        forget_guest_flag(user)  # is_guest() asks again
        raise
    if request is not None:
        sessions.continue_as_account(request, user)


def check_upgrade_rate(request: HttpRequest, user: Any) -> None:
    """Count an upgrade attempt per client address and per guest."""
    rate = conf.UPGRADE_RATE_LIMIT
    check_rate(request, group=UPGRADE_RATE_GROUP, rate=rate)
    check_rate(request, group=UPGRADE_RATE_GROUP, rate=rate, key=f"guest:{user.pk}")


def clean_email(email: str, model: Any = None) -> str:
    """Return ``email`` normalized, or raise :class:`InvalidEmail`.

    Unicode is normalized (NFKC: fullwidth letters, the Kelvin sign) and the domain
    lowercased. Addresses under ``ANONAUTH_EMAIL_DOMAIN`` are refused: they are guests'
    own.
    """
    model = model or get_user_model()
    email = unicodedata.normalize("NFKC", (email or "").strip())
    email = BaseUserManager.normalize_email(email)
    try:
        validate_email(email)
    except ValidationError as error:
        raise InvalidEmail() from error
    if under_guest_domain(email):
        raise InvalidEmail(
            format_lazy(_("Addresses under {domain} cannot be used."), domain=conf.EMAIL_DOMAIN)
        )
    max_length = getattr(_field(model, model.get_email_field_name()), "max_length", None)
    if max_length and len(email) > max_length:
        most = ngettext_lazy(
            "Use at most {count} character.", "Use at most {count} characters.", max_length
        )
        raise InvalidEmail(format_lazy(most, count=max_length))
    return email


@sensitive_variables("password")
def check_password(password: str, user: Any) -> None:
    """Raise :class:`PasswordInvalid` with every validator's message if ``password``
    is empty or fails ``AUTH_PASSWORD_VALIDATORS`` for ``user``."""
    if not password:
        raise PasswordInvalid([_("Enter a password.")])
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise PasswordInvalid([str(message) for message in error.messages]) from error


def email_in_use(email: str, *, exclude_pk: Any = None) -> bool:
    """Whether an account other than ``exclude_pk`` uses ``email`` or an equivalent
    address (any letter case, the domain in Unicode or IDNA form, NFKC-equal): as the
    user model's email, or in allauth's ``EmailAddress`` table if installed. Read where
    anonauth writes (never a replica a moment behind), every row (no manager's filter)."""
    field = get_user_model().get_email_field_name()
    users = db.users().filter(_any_of(field, equivalent_emails(email)))
    if users.exclude(pk=exclude_pk).exists():
        return True
    if not apps.is_installed("allauth.account"):
        return False
    from allauth.account.models import EmailAddress

    addresses = EmailAddress._base_manager.using(db.alias()).filter(
        _any_of("email", equivalent_emails(email))
    )
    return bool(addresses.exclude(user_id=exclude_pk).exists())


def canonical_email(email: str) -> str:
    """One spelling per address, for comparisons and locks: NFKC, case-folded, the
    domain in its IDNA (ASCII) form."""
    local, _, domain = unicodedata.normalize("NFKC", email.strip()).rpartition("@")
    return f"{local.casefold()}@{_idna(domain.casefold(), encode=True)}"


def equivalent_emails(email: str) -> set[str]:
    """The spellings an equivalent address may be stored under: as given, NFKC, and its
    domain in Unicode and in IDNA form (matched case-insensitively)."""
    normal = unicodedata.normalize("NFKC", email.strip())
    local, _, domain = normal.rpartition("@")
    domains = {domain, _idna(domain, encode=True), _idna(domain, encode=False)}
    return {email, normal} | {f"{local}@{variant}" for variant in domains}


def _idna(domain: str, *, encode: bool) -> str:
    try:
        return domain.encode("idna").decode("ascii") if encode else domain.encode().decode("idna")
    except UnicodeError:
        return domain


def _any_of(field: str, emails: set[str]) -> Q:
    return reduce(or_, (Q(**{f"{field}__iexact": email}) for email in sorted(emails)))


# Inside the transaction


def _remove_guest_flag(user: Any) -> dict[str, Any]:
    """Delete the guest flag under the locks; return the guest's metadata."""
    metadata = db.lock_guest_metadata(user.pk)
    if metadata is None:
        raise NotGuest()  # upgraded, linked or purged meanwhile
    db.guests().filter(user_id=user.pk).delete()
    cache_guest_flag(user, None)  # is_guest(user) is False now
    return metadata


def _check_email_unique(user: Any) -> None:
    email = getattr(user, user.get_email_field_name(), None)
    if not email:
        return
    db.advisory_xact_lock(f"email:{canonical_email(email)}")
    if email_in_use(email, exclude_pk=user.pk):
        raise EmailInUse()


def _check_username_unique(user: Any, fields: dict[str, Any]) -> None:
    name = user.USERNAME_FIELD
    if name not in fields or name == user.get_email_field_name():
        return
    taken = db.users().filter(**{f"{name}__iexact": fields[name]})
    if taken.exclude(pk=user.pk).exists():
        raise UsernameInUse()


# Helpers


def _check_field_names(model: Any, fields: dict[str, Any], email_field: str) -> None:
    for name in fields:
        field = _field(model, name)
        if field is None or field.primary_key or name in RESERVED_FIELDS or name == email_field:
            raise TypeError(f"upgrade_guest() cannot set the field {name!r}.")


def _field(model: Any, name: str) -> Any:
    field = model_field(model, name)
    return field if field is not None and field.concrete else None


def _candidate(user: Any, values: dict[str, Any]) -> Any:
    """A copy of ``user`` with the new values, for the password validators to compare."""
    candidate = copy.copy(user)
    _assign(candidate, values)
    return candidate


def _assign(user: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(user, name, value)


def _conflict(user: Any, values: dict[str, Any]) -> AnonAuthError | None:
    """After an IntegrityError, the error it means for the caller, if one of ours."""
    email = values[user.get_email_field_name()]
    if email_in_use(email, exclude_pk=user.pk):
        return EmailInUse()
    try:
        _check_username_unique(user, values)
    except UsernameInUse as error:
        return error
    return None


def end_guest_status_on_password(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of the user model: a guest that got a usable password by any path
    (allauth's password page, ``set_password()`` in project code) is a guest no more.

    Its only credential was its session; with a password it could log in by name, and
    logout or the purge would delete an account. The guest flag goes and
    ``guest_upgraded(method="password_set")`` is sent. Saves that cannot have changed the
    password (``update_fields`` without it) and users known not to be guests cost nothing.
    """
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and "password" not in update_fields:
        return
    flag = cached_guest_flag(instance)
    if not instance.has_usable_password() or flag is None:
        return
    rows = db.guests().filter(user_id=instance.pk)
    metadata = flag.metadata if isinstance(flag, Guest) else _stored_metadata(rows)
    deleted, _ = rows.delete()
    cache_guest_flag(instance, None)
    if deleted:
        signals.send_after_commit(
            signals.guest_upgraded,
            type(instance),
            user=instance,
            request=None,
            method=PASSWORD_SET,
            metadata=metadata,
        )


def _stored_metadata(rows: Any) -> dict[str, Any]:
    metadata: dict[str, Any] | None = rows.values_list("metadata", flat=True).first()
    return metadata or {}
