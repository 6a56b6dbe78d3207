"""Every session operation anonauth performs, in one place.

- **The engine**: :func:`store_class` (the one ``import_module(SESSION_ENGINE)``),
  :func:`is_cookie_store`.
- **Guest sessions**: :func:`start_guest_session` logs a new guest in. A guest session
  carries :data:`SEEN_SESSION_KEY`, the time of its last recorded activity; that key
  marks it as a guest's.
- **Key changes**, one function per meaning: :func:`start_fresh_session` (a new guest:
  a new session, the anonymous one left in place), :func:`rotate_key` (an upgrade or a
  sign-out that keeps the data: new key, the old session deleted), and the key the
  guest row names (:func:`choose_guest_session_key`).
- **Upgrades and sign-outs**: :func:`continue_as_account`,
  :func:`sign_out_keeping_data`.
- **Logins**: :func:`replaced_guest_id`, the guest a ``login()`` replaces, noted when
  the middleware's session is flushed (:func:`note_guest_on_flush`) or else found by
  the session key the client presented (any session object: allauth headless app
  clients get one of allauth's own).
- **Activity**: :func:`pending_touch`: ``last_seen`` for session guests
  (:func:`touch_due`, :func:`touch`) and for guests authenticated by a token or JWT
  (:func:`touch_token_user`), at most once per ``ANONAUTH_TOUCH_INTERVAL``.
- **Backends**: :func:`guest_backend`, the backend a guest's session names.
- **Purges**: :class:`SessionCleanup` deletes purged guests' sessions.
- **Transfers**: :func:`start_transferred_session` signs another device in as a guest,
  :func:`end_sessions` ends the first device's.
- **App clients**: :func:`use_session_token` reads the ``X-Session-Token`` header,
  :func:`session_token` issues it.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, SessionBase
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSessionStore
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieSessionStore
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import models, router
from django.http import HttpRequest, HttpResponseBase
from django.middleware.csrf import rotate_token
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.http import http_date
from django.utils.module_loading import import_string

from anonauth import db, inserts, state
from anonauth.conf import conf
from anonauth.deletion import raw_delete
from anonauth.models import SESSION_KEY_MAX_LENGTH, cached_guest_flag

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

logger = logging.getLogger("anonauth")

# Session key holding the time (epoch seconds) of the guest's last recorded activity.
# Its presence marks a guest session; the middleware touches ``last_seen`` from it.
SEEN_SESSION_KEY = "_anonauth_seen"
# The header app clients (no cookies) send their session token in, as allauth headless.
SESSION_TOKEN_HEADER = "X-Session-Token"
# The same header in ``request.META``: read there on every request, which spares building
# ``request.headers`` when nothing else needs it.
SESSION_TOKEN_META = "HTTP_X_SESSION_TOKEN"
AUTH_SESSION_KEYS = (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)
# Cache key prefix marking a token user as touched within the interval.
TOKEN_TOUCH_PREFIX = "anonauth:touched:"


# The engine


def store_class() -> type[SessionBase]:
    """The ``SessionStore`` of ``SESSION_ENGINE``."""
    store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
    return store


def is_cookie_store(store: type[SessionBase] | None = None) -> bool:
    """Whether sessions live in the cookie itself (no server-side key to name)."""
    return issubclass(store or store_class(), CookieSessionStore)


def guest_backend() -> str:
    """The backend a guest's session names: the first of ``AUTHENTICATION_BACKENDS`` that
    can load a user by id (``get_user``, not ``BaseBackend``'s, which returns ``None``).
    Backends that only check credentials or permissions, such as django-axes'
    ``AxesStandaloneBackend``, rules' ``ObjectPermissionBackend`` or a ``BaseBackend``
    subclass with only ``has_perm``, may come first. Raises ``ImproperlyConfigured`` if none
    can (system check ``anonauth.E501``)."""
    return _loading_backend(tuple(settings.AUTHENTICATION_BACKENDS))


@functools.lru_cache(maxsize=8)
def _loading_backend(paths: tuple[str, ...]) -> str:
    from django.contrib.auth.backends import BaseBackend

    for path in paths:
        # BaseBackend's own get_user() loads nobody: a permission-only backend that
        # subclasses it (as Django's docs suggest) cannot keep a guest signed in.
        get_user = getattr(import_string(path), "get_user", None)
        if get_user is not None and get_user is not BaseBackend.get_user:
            return path
    raise ImproperlyConfigured(
        "No backend in AUTHENTICATION_BACKENDS can load a signed-in user (none has "
        "get_user()), so guests cannot stay signed in: add "
        "'django.contrib.auth.backends.ModelBackend'."
    )


# Guest sessions


def choose_guest_session_key() -> str:
    """Pick the key of the session a new guest will get, so the guest row can name it
    (the purge deletes the session with the guest); ``""`` for cookie-stored sessions.

    No query: a collision, astronomically unlikely, is caught when the session is
    inserted (:func:`start_guest_session`)."""
    return "" if is_cookie_store() else random_string(32, VALID_KEY_CHARS)


def random_string(length: int, alphabet: str) -> str:
    """``length`` characters of ``alphabet``, every string equally likely: one draw from
    :mod:`secrets` written in base ``len(alphabet)`` (Django's ``get_random_string``
    makes one draw, and one ``urandom`` call, per character: ~8x slower)."""
    base = len(alphabet)
    number = secrets.randbelow(base**length)
    characters = []
    for _ in range(length):
        number, digit = divmod(number, base)
        characters.append(alphabet[digit])
    return "".join(characters)


def start_guest_session(
    request: HttpRequest, user: AbstractBaseUser, *, session_key: str = ""
) -> None:
    """Log ``user`` in on ``request`` as a guest: a new session, the data kept.

    Like :func:`django.contrib.auth.login` without its ``user_logged_in`` signal (a
    guest presents no credential, so ``last_login`` and login receivers don't apply);
    ``guest_created`` is sent instead. ``session_key`` (from
    :func:`choose_guest_session_key`) is the new session's key, which the guest row names.
    """
    start_fresh_session(request)
    session = request.session
    _mark_as_guest(session, user)
    if _insert_under(session, user, session_key):
        # Saved in the creation's transaction: the response need not write it again
        # (unless the view changes it); the middleware sets its cookie.
        session.modified = False
        state.of(request).unsaved_cookie = True
    request.user = user  # type: ignore[assignment]  # any AUTH_USER_MODEL
    rotate_token(request)


def _mark_as_guest(session: SessionBase, user: AbstractBaseUser) -> None:
    """Sign ``session`` in as the guest ``user``: the auth keys, the guest marker, the
    guest lifetime."""
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = guest_backend()
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[SEEN_SESSION_KEY] = int(time.time())
    session.set_expiry(conf.SESSION_AGE)


def load(session: SessionBase) -> None:
    """Read ``session``'s data now (one SELECT for a stored session, nothing for a new
    one), so that a creation's transaction holds nothing but its INSERTs."""
    session.items()


def _insert_under(session: SessionBase, user: AbstractBaseUser, session_key: str) -> bool:
    """Insert the guest's session now, under the key the guest row names; return whether
    it was (not for cookie-stored sessions).

    Database-backed engines get their row INSERTed in the caller's transaction, without
    the savepoint ``SessionStore.save`` opens: a taken key breaks the primary key, and
    the creation retries with a new one. Other engines save as usual; should the key be
    taken there, the session gets another one and the guest row follows it.
    """
    if not session_key:
        return False
    session._session_key = session_key  # validated by SessionBase's setter
    if isinstance(session, DbSessionStore):
        _insert_row(session)
        return True
    try:
        session.save(must_create=True)
    except CreateError:
        session.create()
        guest = getattr(user, "anonauth_guest", None)
        if guest is not None and inserts.pending(guest):
            guest.session_key = session.session_key or ""  # its row is not written yet
        else:
            db.guests().filter(user_id=user.pk).update(session_key=session.session_key or "")
    return True


def _insert_row(session: DbSessionStore) -> None:
    """One INSERT of ``session``'s row; ``cached_db`` fills its cache once it commits."""
    data = dict(session.items())
    row = session.create_model_instance(data)
    inserts.save(row, using=router.db_for_write(session.model, instance=row))
    if isinstance(session, CachedDbSessionStore):
        cache, key, age = (
            caches[settings.SESSION_CACHE_ALIAS],
            session.cache_key,
            session.get_expiry_age(),
        )
        inserts.on_commit(lambda: cache.set(key, data, age))


def row_model() -> type[Any] | None:
    """The model of a database-backed session engine's rows, else ``None``."""
    store = store_class()
    return store.get_model_class() if issubclass(store, DbSessionStore) else None


def set_new_session_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    """Set the cookie of a guest session inserted during this request and not changed
    since (``SessionMiddleware`` sets it only when it saves, and this one needs no
    second write), with the same attributes ``SessionMiddleware`` gives it."""
    session = getattr(request, "session", None)
    if session is None or session.modified or not state.of(request).unsaved_cookie:
        return
    if response.status_code >= 500 or session.session_key is None:
        return
    max_age: int | None = None
    expires: str | None = None
    if not session.get_expire_at_browser_close():
        max_age = session.get_expiry_age()
        expires = http_date(time.time() + max_age)
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        session.session_key,
        max_age=max_age,
        expires=expires,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def start_fresh_session(request: HttpRequest) -> None:
    """Carry an anonymous session's data over to a new session with a new key.

    The authenticated session gets a key nobody could have planted (against session
    fixation), while the anonymous session is left as it is: concurrent requests still
    carrying its cookie keep its data and claim the same guest (and, should creating the
    guest fail, the request goes on with its own session untouched). Expired sessions go
    with ``clearsessions`` as usual; nothing is deleted here.
    """
    old = request.session
    request.session = store_class()()
    request.session.update(dict(old.items()))


def start_transferred_session(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Log the guest ``user`` in on ``request``, another device (a transfer code): a new
    session (:func:`start_fresh_session`) with the auth keys, the guest marker and the
    guest lifetime, saved now; a new CSRF token. No ``user_logged_in`` (no credential,
    and nothing to link: the user is the guest itself)."""
    start_fresh_session(request)
    session = request.session
    _mark_as_guest(session, user)
    session.save()
    request.user = user  # type: ignore[assignment]  # any AUTH_USER_MODEL
    rotate_token(request)


def end_sessions(keys: Sequence[str]) -> None:
    """Delete the sessions named by ``keys`` (any server-side engine; blank keys and
    cookie-stored sessions are passed over)."""
    if is_cookie_store():
        return
    store = store_class()
    for key in {key for key in keys if key}:
        store().delete(key)


def rotate_key(request: HttpRequest) -> None:
    """Give the session a new key, keeping its data; the old session is deleted.

    For sessions that are already authenticated (an upgrade): the old key must stop
    working. The new key is created when the response saves the session, which saves
    the query :meth:`SessionBase.cycle_key` spends.
    """
    session = request.session
    if session.session_key is None:
        return
    data = dict(session.items())
    session.flush()
    session.update(data)


# Upgrades and sign-outs


def signed_in_as(request: HttpRequest, user: Any) -> bool:
    """Whether ``request``'s session is signed in as ``user``."""
    return bool(request.session.get(SESSION_KEY) == user._meta.pk.value_to_string(user))


def continue_as_account(request: HttpRequest, user: Any) -> None:
    """Keep ``request``'s visitor signed in as the upgraded ``user``.

    The session keeps its data under a new key (against fixation), its auth hash
    follows the new password (or the visitor would be signed out), it loses the
    guest marker and lifetime, and the CSRF token is rotated. A request signed in
    as someone else (an admin upgrading a guest) is left alone.
    """
    if not signed_in_as(request, user):
        return
    rotate_key(request)
    session = request.session
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.pop(SEEN_SESSION_KEY, None)
    session.set_expiry(None)
    rotate_token(request)
    request.user = user


def sign_out_keeping_data(request: HttpRequest) -> None:
    """Sign the visitor out but keep the session's data (allauth's pending login lives
    there), under a new session key and CSRF token. No ``user_logged_out``."""
    rotate_key(request)
    for key in AUTH_SESSION_KEYS:
        request.session.pop(key, None)
    request.user = AnonymousUser()
    rotate_token(request)


def end(request: HttpRequest) -> None:
    """End the session (data and all) and leave the visitor anonymous."""
    request.session.flush()
    request.user = AnonymousUser()


# Logins


def note_guest_on_flush(request: HttpRequest) -> None:
    """Note which guest a session belonged to when it is flushed, before ``login()``
    replaces it, so the login can link that guest (``request.anonauth.replaced_guest_id``;
    see ``receivers.link_guest_on_login``).

    Wraps the session's ``flush``/``aflush`` on this request only: no query, and
    nothing at all for requests without a session key.
    """
    session = getattr(request, "session", None)
    if session is None or session.session_key is None:
        return
    flush, aflush = session.flush, session.aflush
    request_state = state.of(request)

    def noting_flush() -> None:
        if session.get(SEEN_SESSION_KEY) is not None:
            request_state.replaced_guest_id = session.get(SESSION_KEY)
        flush()

    async def noting_aflush() -> None:
        if await session.aget(SEEN_SESSION_KEY) is not None:
            request_state.replaced_guest_id = await session.aget(SESSION_KEY)
        await aflush()

    session.flush = noting_flush
    session.aflush = noting_aflush


def replaced_guest_id(request: HttpRequest) -> Any:
    """The guest whose session this request's ``login()`` replaced, or ``None``.

    Noted without a query when the middleware's session was flushed; otherwise found by
    the session key the client presented (cookie or ``X-Session-Token``), which the
    ``Guest`` row names: one indexed query, on logins only.
    """
    noted = state.of(request).replaced_guest_id
    return noted if noted is not None else _presented_guest_id(request)


def _presented_guest_id(request: HttpRequest) -> Any:
    key = request.headers.get(SESSION_TOKEN_HEADER) or request.COOKIES.get(
        settings.SESSION_COOKIE_NAME
    )
    if not key:
        return None
    if is_cookie_store():
        data = store_class()(key).load()  # the cookie holds the signed session data
        return data.get(SESSION_KEY) if data.get(SEEN_SESSION_KEY) is not None else None
    return db.guests().filter(session_key=key).values_list("user_id", flat=True).first()


# Activity


def touch_before_view(request: HttpRequest) -> None:
    """Write a returning session guest's ``last_seen`` before its view runs (at most once
    per ``ANONAUTH_TOUCH_INTERVAL``), so that a purge cannot take the guest, and the rows
    its view writes, while the request is in flight: the purge re-checks staleness inside
    each batch, and waits for (or passes over) a guest whose row this touch holds.

    Loads the session of a request that carries one (the query any view reading
    ``request.user`` makes anyway); requests without a session cost nothing.
    """
    session = getattr(request, "session", None)
    if session is None or session.session_key is None:
        return
    session.get(SEEN_SESSION_KEY)  # load it: touch_due decides from the loaded session
    if touch_due(request):
        touch(request)


def pending_touch(request: HttpRequest) -> Callable[[], None] | None:
    """The ``last_seen`` write this request is due after the view, or ``None``.

    Decided without a query: a session guest is due once per interval
    (:func:`touch_due`; usually written before the view already); a user that DRF
    authenticated by a token or JWT (not by the session) is checked against a cache mark
    that lasts the interval (:func:`touch_token_user`). Other requests cost nothing.
    """
    if touch_due(request):
        return functools.partial(touch, request)
    user = _token_user(request)
    return None if user is None else functools.partial(touch_token_user, user)


def touch_due(request: HttpRequest) -> bool:
    """Whether the guest's ``last_seen`` is due a write, decided from the loaded session.

    Only a session the request has already read counts: this costs no query.
    """
    session = getattr(request, "session", None)
    if session is None or not session.accessed:
        return False
    seen = session.get(SEEN_SESSION_KEY)
    return seen is not None and time.time() - seen >= conf.TOUCH_INTERVAL


def touch(request: HttpRequest) -> None:
    """Write ``last_seen`` for the guest signed in on ``request`` (one UPDATE).

    A session whose user is no longer a guest loses its marker. The middleware calls
    this when :func:`touch_due` says so, at most once per ``ANONAUTH_TOUCH_INTERVAL``.
    """
    session = request.session
    updated = (
        db.guests()
        .filter(user_id=str(session.get(SESSION_KEY)))
        .update(last_seen=timezone.now(), creation_key=None, session_key=_server_key(session))
    )
    if updated:
        session[SEEN_SESSION_KEY] = int(time.time())
    else:
        del session[SEEN_SESSION_KEY]


def _token_user(request: HttpRequest) -> Any:
    """The user DRF authenticated this request by a token or JWT, or ``None``.

    Session users stay the lazy object ``AuthenticationMiddleware`` set (DRF's
    ``SessionAuthentication`` hands it back); a token authenticator sets a user instance.
    A user known not to be a guest (its flag already loaded) is passed over.
    """
    user = getattr(request, "user", None)
    if user is None or isinstance(user, SimpleLazyObject) or not user.is_authenticated:
        return None
    if cached_guest_flag(user) is None:
        return None
    session = getattr(request, "session", None)
    if session is not None and session.accessed and SEEN_SESSION_KEY in session:
        return None  # a session guest (just created): its session carries the touch
    return user


def touch_token_user(user: Any) -> None:
    """Write ``last_seen`` for a token-authenticated ``user`` if it is a guest, at most
    once per ``ANONAUTH_TOUCH_INTERVAL`` (a mark in the rate-limit cache); one UPDATE,
    which changes nothing for a registered user. A cache outage skips the touch."""
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    try:
        first = cache.add(f"{TOKEN_TOUCH_PREFIX}{user.pk}", 1, timeout=conf.TOUCH_INTERVAL)
    except Exception:
        logger.warning("anonauth: the cache is unavailable; activity not recorded", exc_info=True)
        return
    if first:
        db.guests().filter(user_id=user.pk).update(last_seen=timezone.now())


def _from_a_browser(request: HttpRequest) -> bool:
    headers = request.headers
    return bool(request.COOKIES or headers.get("Origin") or headers.get("Sec-Fetch-Site"))


def _server_key(session: SessionBase) -> str:
    """The key a purge can delete the session by (``""`` for cookie-stored sessions)."""
    key = session.session_key
    if isinstance(session, CookieSessionStore) or key is None or len(key) > SESSION_KEY_MAX_LENGTH:
        return ""
    return key


# Deleting purged guests' sessions


@dataclass(frozen=True)
class SessionCleanup:
    """Deletes purged guests' sessions by key for the configured ``SESSION_ENGINE``.

    Database-backed engines (``db``, ``cached_db``) lose their rows inside the batch's
    transaction; cache-backed ones (``cache``, ``cached_db``) lose their cache entries
    after it commits; any other server-side engine (``file``) deletes key by key after
    the commit. Cookie-stored sessions (``signed_cookies``) are out of reach, and
    harmless: they name a user that no longer exists.
    """

    store: type[Any]
    model: type[models.Model] | None
    cache_prefix: str | None

    @classmethod
    def from_settings(cls) -> SessionCleanup:
        store = store_class()
        model = store.get_model_class() if issubclass(store, DbSessionStore) else None
        return cls(store, model, getattr(store, "cache_key_prefix", None))

    @property
    def per_key(self) -> bool:
        return (
            self.model is None
            and self.cache_prefix is None
            and not issubclass(self.store, CookieSessionStore)
        )

    def delete_rows(self, keys: Sequence[str]) -> int:
        """Delete the database rows of ``keys`` (inside the batch's transaction) and
        return how many sessions go."""
        if self.model is None:
            return len(keys) if self.cache_prefix is not None or self.per_key else 0
        if not keys:
            return 0
        using = router.db_for_write(self.model)
        in_keys = key_set(self.model, keys, using)
        sessions = self.model._base_manager.using(using).filter(session_key__in=in_keys)
        return raw_delete(sessions, using)

    def drop_after_commit(self, keys: Sequence[str]) -> None:
        """Delete what the engine keeps outside the database (after the commit)."""
        if self.cache_prefix is not None:
            cache = caches[settings.SESSION_CACHE_ALIAS]
            cache.delete_many([self.cache_prefix + key for key in keys])
        elif self.per_key:
            for key in keys:
                self.store().delete(key)


def key_set(model: type[models.Model], keys: Sequence[str], using: str) -> Any:
    """``keys`` for an ``__in`` lookup on ``model``'s rows in ``using``: one array
    parameter when the sessions live in anonauth's database (and it is PostgreSQL)."""
    if using != db.alias():
        return list(keys)
    return db.id_set(keys, model._meta.get_field("session_key"))  # type: ignore[arg-type]


# App clients: the X-Session-Token header


def use_session_token(request: HttpRequest) -> None:
    """Authenticate an app client by its ``X-Session-Token`` header instead of a cookie.

    The header names the session like the cookie would; a browser cannot be made to
    send a custom header cross-site, so such requests are exempt from CSRF checks.
    """
    token = request.META.get(SESSION_TOKEN_META)
    if not token:
        return
    request.session = store_class()(token)
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]


def session_token(request: HttpRequest) -> str | None:
    """The session key for app clients (no cookies, no browser's ``Origin`` or
    ``Sec-Fetch-Site``); ``None`` for browsers, which keep the session in the cookie."""
    if not request.headers.get(SESSION_TOKEN_HEADER) and _from_a_browser(request):
        return None
    if request.session.session_key is None:
        request.session.save()
    return request.session.session_key
