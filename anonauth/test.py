"""Helpers for testing a project that uses anonauth.

Import them in your own tests::

    from anonauth.test import capture_signal, guest_client, make_guest, make_registered_user

They work with any ``AUTH_USER_MODEL`` and any test runner (pytest or ``TestCase``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.dispatch import Signal
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import get_random_string

from anonauth.guests import create_guest
from anonauth.models import Guest

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

__all__ = [
    "BROWSER_USER_AGENT",
    "capture_signal",
    "connected",
    "guest_client",
    "make_guest",
    "make_registered_user",
]

# A current desktop browser: the lazy path refuses empty agents, crawlers and HTTP
# libraries, and Django's test client sends no User-Agent at all.
BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


@contextmanager
def connected(
    signal: Signal, receiver: Callable[..., Any], *, sender: Any = None
) -> Iterator[None]:
    """Connect ``receiver`` to ``signal`` (from ``sender`` only, if given) for the block.

    The receiver is held strongly, so a lambda or a local function works, and it is
    disconnected when the block ends, whether or not it raised::

        def broken(**kwargs):
            raise RuntimeError("receiver bug")

        with connected(guest_linking, broken):
            ...
    """
    signal.connect(receiver, sender=sender, weak=False)
    try:
        yield
    finally:
        signal.disconnect(receiver, sender=sender)


@contextmanager
def capture_signal(signal: Signal, *, sender: Any = None) -> Iterator[list[dict[str, Any]]]:
    """Record each sending of ``signal`` while the block runs; always disconnects.

    Yields a list that receives, per sending, a dict of what receivers are given: the
    ``sender``, the ``signal`` and the keyword arguments. Signals that anonauth sends after
    commit only arrive once the transaction commits (in a pytest-django test, inside
    ``django_capture_on_commit_callbacks(execute=True)``; in a ``TestCase``,
    ``captureOnCommitCallbacks(execute=True)``)::

        with capture_signal(guest_created) as calls:
            ...
        assert [call["user"] for call in calls] == [guest]
    """
    calls: list[dict[str, Any]] = []

    def record(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    with connected(signal, record, sender=sender):
        yield calls


def make_registered_user(
    email: str = "member@example.com", password: str = "correct-horse-42", **extra: Any
) -> AbstractBaseUser:
    """Create a registered (non-guest) user with a usable password, under any user model.

    A model keyed by email gets ``email`` as its username; otherwise the username is the
    part of ``email`` before the ``@`` (pass ``username=...`` in ``extra`` to choose it),
    and the email goes into the model's email field when it has one. ``extra`` fields
    are passed on to the manager's ``create_user()`` (e.g. ``is_staff=True``).
    """
    model = get_user_model()
    fields = _identity_fields(model, email)
    fields.update(extra)
    user: AbstractBaseUser = model._default_manager.create_user(password=password, **fields)
    return user


def _identity_fields(model: type[Any], email: str) -> dict[str, Any]:
    """The username (and email) fields for a user called ``email``."""
    username_field: str = model.USERNAME_FIELD
    email_field: str = model.get_email_field_name()
    if username_field == email_field:
        return {username_field: email}
    fields = {username_field: email.partition("@")[0]}
    try:
        model._meta.get_field(email_field)
    except FieldDoesNotExist:
        return fields
    return {**fields, email_field: email}


def make_guest(*, seen_ago: timedelta | None = None) -> AbstractBaseUser:
    """Create a guest user (not logged in anywhere), like ``anonauth.guests.create_guest``.

    ``seen_ago`` backdates the guest's last activity (``Guest.last_seen``), the time
    staleness and the purge are measured from: ``make_guest(seen_ago=timedelta(days=60))``
    is a guest the default ``ANONAUTH_MAX_AGE`` purges.
    """
    user = create_guest()
    if seen_ago is not None:
        Guest.objects.filter(pk=user.pk).update(last_seen=timezone.now() - seen_ago)
    return user


def guest_client(client: Client | None = None) -> Client:
    """Return ``client`` (or a new ``Client``) signed in as a new guest, like a browser.

    The client gets a browser ``User-Agent`` (unless it has one) and a CSRF cookie, the
    cookie a browser holds, so ``@guest_allowed`` views and ``ensure_guest()`` accept it.
    The guest is signed in through anonauth's sign-in endpoint (``anonauth:sign-in``:
    the project's URLconf must include ``anonauth.urls``), so its session is a real
    guest session. The rate limit and CAPTCHA gates are off for that one request;
    when the sign-in fails (``ANONAUTH_ENABLED = False``, a client signed in as a
    registered user, ``CSRF_USE_SESSIONS`` with ``enforce_csrf_checks``) it raises
    ``AssertionError`` with the response::

        client = guest_client()
        guest = get_user_model().objects.get(pk=client.session[SESSION_KEY])
    """
    client = Client() if client is None else client
    client.defaults.setdefault("HTTP_USER_AGENT", BROWSER_USER_AGENT)
    csrf: dict[str, Any] = {settings.CSRF_HEADER_NAME: _csrf_cookie(client)}
    with override_settings(ANONAUTH_RATE_LIMIT=None, ANONAUTH_CAPTCHA_VERIFIER=None):
        response = client.post(reverse("anonauth:sign-in"), **csrf)
    if response.status_code != 201:
        raise AssertionError(
            f"signing in a guest answered {response.status_code}: {response.content!r}"
        )
    return client


def _csrf_cookie(client: Client) -> str:
    """The client's CSRF cookie value, set to a fresh secret if it has none."""
    name = settings.CSRF_COOKIE_NAME
    if name not in client.cookies:
        client.cookies[name] = get_random_string(32)
    return client.cookies[name].value
