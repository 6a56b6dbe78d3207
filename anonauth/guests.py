"""Guest identity: ``is_guest``, ``create_guest``, ``ensure_guest`` and the admission gates."""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, UNUSABLE_PASSWORD_SUFFIX_LENGTH
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, models
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import RANDOM_STRING_CHARS, salted_hmac
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from anonauth import audit, db, inserts, observe, policy, rates, sessions, signals, state
from anonauth import metadata as guest_metadata
from anonauth.conf import conf
from anonauth.deletion import Plan
from anonauth.exceptions import (
    AlreadyAuthenticated,
    CaptchaFailed,
    ClientRefused,
    DeletionBlocked,
    GuestRefused,
    GuestsDisabled,
    GuestUnavailable,
    NotGuest,
    RateLimited,
)
from anonauth.models import FLAG_UNKNOWN, AuditEvent, Guest, cache_guest_flag, cached_guest_flag

logger = logging.getLogger("anonauth")

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    # Any user model (AUTH_USER_MODEL is swappable), and what ``request.user`` may be.
    User = AbstractBaseUser
    AnyUser = AbstractBaseUser | AnonymousUser

# The probe cookie (``ANONAUTH_PROBE_COOKIE_NAME``), set for a visitor refused only for
# sending no cookie so its next request qualifies, is signed with this salt.
PROBE_SALT = "anonauth.probe"
CLAIM_SALT = "anonauth.claim"
# The refusal code of a client that sent no cookie (it gets the probe cookie).
NO_COOKIE = "no_cookie"
RATE_LIMIT_GROUP = "anonauth.create_guest"
# Concurrent requests of one client may claim the guest created for it within this
# window; after it a reused cookie gets a guest of its own. The claim is bound to the
# session key or the signed probe cookie, the client address and the user agent
# (:func:`_creation_key`), so a cookie planted by another site claims nothing.
CLAIM_WINDOW = timedelta(seconds=10)
USERNAME_ATTEMPTS = 5
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})
# RFC 9110's safe methods (as Django's CSRF middleware counts them): no CSRF check, and a
# logout by one of them never deletes a guest.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def is_guest(user: Any) -> bool:
    """Return whether ``user`` is a guest (cached on the user instance)."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    return hasattr(user, "anonauth_guest")


async def ais_guest(user: Any) -> bool:
    """:func:`is_guest` for async code: no synchronous query (cached on the user too)."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    flag = cached_guest_flag(user)
    if flag is FLAG_UNKNOWN:
        flag = await db.guests().filter(user_id=user.pk).afirst()
        cache_guest_flag(user, flag)
    return flag is not None


def create_guest(
    *, request: HttpRequest | None = None, metadata: dict[str, Any] | None = None
) -> User:
    """Create a guest user and return it, without logging it in.

    ``metadata`` is stored with it (:func:`anonauth.metadata.clean` validates it first:
    :class:`~anonauth.exceptions.MetadataInvalid` and its subclasses).
    """
    cleaned = guest_metadata.clean(metadata)
    user, _created = _create_guest_user(creation_key=None, request=request, metadata=cleaned)
    return user


def ensure_guest(request: HttpRequest) -> AnyUser:
    """Return the signed-in user, creating and logging in a guest if there is none.

    The lazy path's admission gates apply: when one refuses, the visitor stays
    anonymous, the anonymous user is returned and the refusal is kept on
    ``request.anonauth.refusal`` for the view to show. Idempotent and race-safe:
    concurrent requests carrying the same cookie get the same guest.

    In a DRF view, pass DRF's ``Request``: the guest is signed in on the Django
    request behind it (whose session the response saves) and becomes DRF's
    ``request.user`` too.
    """
    user: AnyUser = request.user
    if user.is_authenticated:
        return user
    django_request = state.django_request(request)
    try:
        metadata = check_admission(django_request, lazy=True)
        user = sign_in_new_guest(django_request, metadata=metadata)[0]
    except GuestRefused as error:
        refusal = error
    except DatabaseError:
        # Rolled back: no user or guest row is left. The visitor browses on anonymously.
        logger.exception("anonauth: creating a guest failed")
        refusal = GuestUnavailable()
    else:
        if django_request is not request:
            request.user = user  # type: ignore[assignment]  # DRF's Request has its own
        return user
    state.refuse(django_request, refusal)
    observe.refused(django_request, refusal.code, where="lazy")
    return user


async def aensure_guest(request: HttpRequest) -> AnyUser:
    """:func:`ensure_guest` for async views."""
    user: AnyUser = await sync_to_async(ensure_guest)(request)
    return user


def sign_in(request: HttpRequest, *, metadata: Any = None) -> tuple[AnyUser, bool]:
    """Sign a guest in for the API: return ``(user, created)``.

    ``metadata`` (the client's, checked first by :func:`anonauth.metadata.clean`, whose
    errors it raises) is stored with a new guest, unless ``ANONAUTH_BEFORE_CREATE``
    returns metadata of its own. An existing guest is returned as it is, its stored
    metadata unchanged; a registered user raises :class:`AlreadyAuthenticated`; the
    gates that apply to API clients (enabled, rate limit, CAPTCHA, the hook) raise their
    :class:`GuestRefused` subclasses.
    """
    cleaned = guest_metadata.clean(metadata)
    user: AnyUser = request.user
    if user.is_authenticated:
        if is_guest(user):
            return user, False
        raise AlreadyAuthenticated()
    state.of(request).metadata = cleaned
    stored = check_admission(request, lazy=False)
    return sign_in_new_guest(request, metadata=stored)


def sign_in_new_guest(
    request: HttpRequest, *, metadata: dict[str, Any] | None = None
) -> tuple[User, bool]:
    """Create (or claim, in a race) the guest for this request's client and log it in.

    The user, its ``Guest`` row, its session (database-backed engines) and its audit
    event are written in one transaction: one commit when no transaction is open
    (no savepoint), and if any of them fails, no half-created guest is left.
    """
    previous_session = request.session
    sessions.load(previous_session)  # the anonymous session's data, read before BEGIN

    def log_in(user: User, session_key: str) -> None:
        request.session = previous_session  # a retried attempt starts afresh
        sessions.start_guest_session(request, user, session_key=session_key)

    try:
        return _create_guest_user(
            creation_key=_creation_key(request),
            request=request,
            log_in=log_in,
            metadata=metadata or {},
        )
    except BaseException:
        request.session, request.user = previous_session, AnonymousUser()
        raise


def delete_guest(user: Any, *, request: HttpRequest | None = None) -> None:
    """Delete a guest and everything that cascades from it; end its session.

    Raises :class:`NotGuest` if ``user`` is not (or, once locked, no longer) a guest,
    :class:`DeletionBlocked` if a protecting relation keeps it (checked first: a
    ``DO_NOTHING`` row would fail the delete only at the commit).
    """
    if not is_guest(user):
        raise NotGuest()
    user_id, sender = user.pk, user._meta.model  # (type() of a lazy request.user is not it)
    try:
        with db.atomic():
            if not db.lock_guest(user_id):
                raise NotGuest()  # upgraded, linked or purged meanwhile
            if _signs_in_otherwise(user):
                raise NotGuest()  # a stray Guest row never costs an account (as in the purge)
            blocker = Plan.build(user._meta.concrete_model).blocked([user_id]).get(user_id)
            if blocker is not None:
                raise DeletionBlocked(blocked_by=blocker)
            user.delete(using=db.alias())
            signals.send_after_commit(
                signals.guest_deleted, sender, user_id=user_id, request=request
            )
    except (ProtectedError, RestrictedError) as error:
        raise DeletionBlocked(blocked_by=str(error.args[0])) from error
    if request is not None:
        sessions.end(request)


def _signs_in_otherwise(user: Any) -> bool:
    """Whether ``user`` can sign in another way than a guest session: staff, superuser
    or a usable password."""
    if getattr(user, "is_superuser", False) or getattr(user, "is_staff", False):
        return True
    return bool(user.has_usable_password())


# Admission gates


def check_admission(request: HttpRequest, *, lazy: bool) -> dict[str, Any]:
    """Raise a :class:`GuestRefused` subclass if no guest may be created for ``request``;
    return the new guest's metadata (:func:`anonauth.policy.ask_before_create`).

    ``lazy`` adds the gates that only make sense when a guest is created as a side
    effect of browsing: the request method, the user agent and the cookie check.
    """
    if not conf.ENABLED:
        raise GuestsDisabled()
    if lazy:
        _check_client(request)
    check_rate(request, group=RATE_LIMIT_GROUP, rate=conf.RATE_LIMIT)
    _check_captcha(request)
    return policy.ask_before_create(request)


def _check_client(request: HttpRequest) -> None:
    if request.method in SKIPPED_METHODS:
        raise ClientRefused(_("HEAD and OPTIONS requests get no guest."), code="method_refused")
    if blocked_user_agent(request.META.get("HTTP_USER_AGENT", "")):
        raise ClientRefused(_("This user agent gets no guest."), code="user_agent_refused")
    if conf.REQUIRE_COOKIE and not request.COOKIES and not request.session.session_key:
        raise ClientRefused(_("Clients that keep no cookies get no guest."), code=NO_COOKIE)


def blocked_user_agent(user_agent: str) -> bool:
    """Return whether ``user_agent`` matches ``ANONAUTH_BLOCKED_USER_AGENTS``."""
    return bool(_user_agent_pattern(tuple(conf.BLOCKED_USER_AGENTS)).search(user_agent))


@functools.lru_cache(maxsize=8)
def _user_agent_pattern(patterns: Sequence[str]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def check_rate(
    request: HttpRequest, *, group: str, rate: str | None, key: str | None = None
) -> None:
    """Count this request against the ``rate`` of ``group`` (per IP, or per ``key``);
    raise :class:`RateLimited` when over it, :class:`GuestUnavailable` when the cache
    cannot count. One round trip on Redis (:mod:`anonauth.rates`)."""
    if rate is None:
        return
    counted = client_network(request) if key is None else key
    try:
        usage = rates.hit(request, group=group, value=counted, rate=rate)
    except Exception as error:  # the cache is unreachable (any backend's error): refuse
        logger.warning("anonauth: the rate-limit cache failed", exc_info=error)
        raise GuestUnavailable() from error
    if usage is not None and usage.should_limit:
        raise RateLimited(retry_after=max(usage.time_left, 1))


def client_address(request: HttpRequest) -> str:
    """The client's IP address: ``REMOTE_ADDR``, or with ``ANONAUTH_TRUSTED_PROXIES = N``
    the address the first of those N proxies saw, from the right of ``X-Forwarded-For``
    (the entries further left are whatever the client sent, and may be spoofed).

    A missing or malformed header falls back to ``REMOTE_ADDR``; no address at all (a
    server on a Unix socket) gives ``""``. An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``,
    from a dual-stack listener or a proxy) is its IPv4 address: as IPv6 every IPv4 client
    would share the /64 ``::/64``. Never raises.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = conf.TRUSTED_PROXIES
    chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    chain = [part for part in chain if part]
    if proxies >= 1 and chain:
        address = _parsed_address(chain[-min(proxies, len(chain))])
        if address is not None:
            return address
    return _parsed_address(remote) or remote


def _parsed_address(text: str) -> str | None:
    """``text`` as an IP address (IPv4-mapped IPv6 as IPv4), or ``None``."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped if mapped is not None else address)


def client_network(request: HttpRequest) -> str:
    """The client's address for rate limits: IPv4 as is, IPv6 as its /64 (one host
    gets a whole /64); requests with no address share one count."""
    address = client_address(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "no-client-address"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _check_captcha(request: HttpRequest) -> None:
    if conf.CAPTCHA_VERIFIER is None:
        return
    verifier: Callable[[HttpRequest], bool] = import_string(conf.CAPTCHA_VERIFIER)
    if not verifier(request):
        raise CaptchaFailed()


# Creation


# ``log_in(user, session_key)``: what a creation does with its user in its transaction.
LogIn = Callable[["User", str], None]


def _create_guest_user(
    *,
    creation_key: str | None,
    request: HttpRequest | None,
    log_in: LogIn | None = None,
    metadata: dict[str, Any],
) -> tuple[User, bool]:
    """Insert a guest user (and ``log_in`` it); in a race for ``creation_key``, return
    the winner's.

    Returns ``(user, created)``. Each attempt is one transaction:
    when an insert breaks a unique constraint (the claim's ``creation_key``, or a
    username or session key that is taken) the whole attempt is rolled back, the winner
    of the claim is looked up, and otherwise the next attempt draws fresh names.
    """
    network_key = policy.network_key(request)
    batched = _batched(log_in is not None)
    for attempt in range(USERNAME_ATTEMPTS):
        session_key = "" if log_in is None else sessions.choose_guest_session_key()
        try:
            # Batched (PostgreSQL): the rows are one statement, itself the one commit
            # when no transaction is open. Otherwise the creation's own transaction
            # (BEGIN, the INSERTs, COMMIT: no savepoint). Inside an open one
            # (ATOMIC_REQUESTS, a caller's atomic) a savepoint, so a failed attempt rolls
            # back only its own rows.
            with _transaction(batched, network_key):
                # Batched, the cap's lock draws the user's key too (one round trip less).
                capped_batch = batched and network_key is not None
                draw = inserts.key_draw(get_user_model(), db.alias()) if capped_batch else None
                user_pk = policy.reserve_network(network_key, creation_key, draw=draw)
                with inserts.batch(batched):
                    user = _insert_guest(creation_key, session_key, network_key, metadata, user_pk)
                    if log_in is not None:
                        log_in(user, session_key)
                    audit.record(AuditEvent.CREATED)
        except inserts.NoSequence:
            batched = False  # nothing written; the ORM saves this user model's rows now
            continue
        except IntegrityError:
            claimed = _claim(creation_key)
            if claimed is not None:
                return _claimed(claimed, log_in), False
            if attempt == USERNAME_ATTEMPTS - 1:
                raise
            creation_key = _usable_key(creation_key)
            continue
        signals.send_after_commit(
            signals.guest_created, user._meta.model, user=user, request=request
        )
        return user, True
    raise AssertionError("unreachable")  # pragma: no cover


def _batched(logs_in: bool) -> bool:
    """Whether this creation's rows go in one statement (:mod:`anonauth.inserts`)."""
    models_written: list[type[Any]] = [get_user_model(), Guest]
    if logs_in and (row_model := sessions.row_model()) is not None:
        models_written.append(row_model)
    if conf.AUDIT:
        models_written.append(AuditEvent)
    return inserts.eligible(*models_written)


def _transaction(batched: bool, network_key: str | None) -> AbstractContextManager[Any]:
    """The creation's transaction; none for a batch that needs none (its one statement
    commits alone, unless a transaction is open or the live-guest cap's lock needs one:
    a ``network_key`` exists only while the cap is on)."""
    if batched and network_key is None and not db.connection().in_atomic_block:
        return nullcontext()
    return db.atomic()


def _insert_guest(
    creation_key: str | None,
    session_key: str,
    network_key: str | None,
    metadata: dict[str, Any],
    user_pk: Any = None,
) -> User:
    """INSERT the user (under ``user_pk`` when its key is drawn already) and its ``Guest``
    row (naming the session it will get, the network's keyed hash while the live-guest
    cap is on, and its metadata)."""
    user = _insert_user(user_pk)
    guest = Guest(
        user_id=user.pk,
        creation_key=creation_key,
        session_key=session_key,
        network_key=network_key,
        metadata=metadata,
    )
    inserts.save(guest, using=db.alias())
    user.anonauth_guest = guest  # type: ignore[attr-defined]
    return user


def _claimed(user: User, log_in: LogIn | None) -> User:
    """Log in the guest a concurrent request of the same client created (its session in
    a transaction of its own)."""
    if log_in is not None:
        with db.atomic():
            log_in(user, sessions.choose_guest_session_key())
    return user


def _claim(creation_key: str | None) -> User | None:
    """Return the guest created for ``creation_key`` within the claim window, if any."""
    if creation_key is None:
        return None
    guest = (
        db.guests()
        .select_related("user")
        .filter(creation_key=creation_key, created_at__gte=timezone.now() - CLAIM_WINDOW)
        .first()
    )
    return None if guest is None else guest.user


def _usable_key(creation_key: str | None) -> str | None:
    """Drop a creation key that an old guest still holds, so the insert can succeed."""
    if creation_key is not None and db.guests().filter(creation_key=creation_key).exists():
        return None
    return creation_key


def _creation_key(request: HttpRequest) -> str | None:
    """The claim key of this client's concurrent first requests, or ``None``.

    A keyed digest (``SECRET_KEY``) of the first cookie that identifies the client (the
    session key, the signed probe cookie, the CSRF cookie) together with the client
    address and user agent. A cookie planted by another site (cookie tossing) makes a
    victim's request share the cookie, but not the attacker's address and agent, so it
    claims nothing; an unsigned probe value is ignored.
    """
    value = (
        request.session.session_key
        or probe_value(request)
        or request.COOKIES.get(settings.CSRF_COOKIE_NAME)
    )
    if not value:
        return None
    client = f"{value}\n{client_address(request)}\n"
    client += request.META.get("HTTP_USER_AGENT", "")
    return salted_hmac(CLAIM_SALT, client, algorithm="sha256").hexdigest()


def probe_value(request: HttpRequest) -> str | None:
    """The probe cookie's value, if it carries anonauth's signature."""
    value: str | None = request.get_signed_cookie(
        conf.PROBE_COOKIE_NAME, default=None, salt=PROBE_SALT
    )
    return value


def _insert_user(pk: Any = None) -> User:
    model = get_user_model()
    user = model(**_identity_fields(model))
    if pk is not None:
        user.pk = pk
    user.password = unusable_password()
    inserts.save(user, using=db.alias(), draw_pk=True)
    return user


def unusable_password() -> str:
    """What ``set_unusable_password()`` stores (``make_password(None)``: the prefix and 40
    random characters), drawn in one go (:func:`anonauth.sessions.random_string`)."""
    return UNUSABLE_PASSWORD_PREFIX + sessions.random_string(
        UNUSABLE_PASSWORD_SUFFIX_LENGTH, RANDOM_STRING_CHARS
    )


def _identity_fields(model: type[Any]) -> dict[str, Any]:
    """Username and email values for a new guest, respecting the model's fields."""
    username_name: str = model.USERNAME_FIELD
    email_name: str = model.get_email_field_name()
    email_field = model_field(model, email_name)
    fields: dict[str, Any] = {}
    if email_field is not None and _needs_email(email_field):
        fields[email_name] = _generate_email(max_length=email_field.max_length or 254)
    if username_name not in fields:
        username_field = model_field(model, username_name)
        max_length = getattr(username_field, "max_length", None) or 150
        fields[username_name] = _generate_username(max_length=max_length)
    return fields


def model_field(model: type[Any], name: str) -> models.Field[Any, Any] | None:
    """The field ``name`` of ``model``, or ``None`` if it has none (or only a relation)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.Field) else None


def _needs_email(field: models.Field[Any, Any]) -> bool:
    """A unique or required email cannot stay empty, so guests get a synthetic one."""
    return bool(field.unique or (not field.blank and not field.null))


def _generate_username(*, max_length: int) -> str:
    generator: Callable[..., str] = import_string(conf.USERNAME_GENERATOR)
    name = generator(max_length=max_length)
    if not name or len(name) > max_length:
        raise ImproperlyConfigured(
            f"ANONAUTH_USERNAME_GENERATOR returned {name!r}, which is empty or longer "
            f"than {max_length} characters."
        )
    return name


def _generate_email(*, max_length: int) -> str:
    generator: Callable[..., Any] = import_string(conf.EMAIL_GENERATOR)
    email = generator(max_length=max_length)
    problem = _synthetic_email_problem(email, max_length)
    if problem is not None:
        raise ImproperlyConfigured(f"ANONAUTH_EMAIL_GENERATOR returned {email!r}, {problem}.")
    return email  # type: ignore[no-any-return]


def _synthetic_email_problem(email: Any, max_length: int) -> str | None:
    """Why ``email`` cannot be a guest's address, or ``None``. It must be a valid address
    of at most ``max_length`` characters under ``ANONAUTH_EMAIL_DOMAIN``: upgrades refuse
    those addresses, so a guest never holds (and blocks, or receives mail for) a real one."""
    if not isinstance(email, str) or not email:
        return "which is not an address"
    if len(email) > max_length:
        return f"which is longer than {max_length} characters"
    try:
        validate_email(email)
    except ValidationError:
        return "which is not a valid address"
    if not under_guest_domain(email):
        return f"which is not under ANONAUTH_EMAIL_DOMAIN ({conf.EMAIL_DOMAIN!r})"
    return None


def under_guest_domain(email: str) -> bool:
    """Whether ``email`` is under ``ANONAUTH_EMAIL_DOMAIN`` (the domain or a subdomain):
    a guest's synthetic address, which an upgrade refuses."""
    domain, guest_domain = email.rpartition("@")[2].lower(), conf.EMAIL_DOMAIN.lower()
    return domain == guest_domain or domain.endswith(f".{guest_domain}")


GUEST_PREFIX = "guest-"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def generate_username(*, max_length: int) -> str:
    """The default guest username: ``guest-`` and up to 20 random characters.

    Drawn from :mod:`secrets` (36**20, about 10**31 names); the prefix is dropped
    when the field is too short for it.
    """
    prefix = GUEST_PREFIX if max_length >= len(GUEST_PREFIX) + 12 else ""
    length = min(20, max_length - len(prefix))
    return prefix + sessions.random_string(length, _ALPHABET)


# The longest local part an address may have (RFC 5321).
EMAIL_LOCAL_MAX_LENGTH = 64


def generate_email(*, max_length: int) -> str:
    """The default guest address: a name from ``ANONAUTH_USERNAME_GENERATOR`` (at most 64
    characters, fewer if the field is short) ``@`` ``ANONAUTH_EMAIL_DOMAIN``
    (``guest.invalid``: a reserved name that never delivers)."""
    domain = conf.EMAIL_DOMAIN
    local_length = min(EMAIL_LOCAL_MAX_LENGTH, max_length - len(domain) - 1)
    return f"{_generate_username(max_length=local_length)}@{domain}"
