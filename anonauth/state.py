"""The per-request state: ``request.anonauth``.

Like django-htmx's ``request.htmx`` and django-allauth's ``request.allauth``, one object
carries everything anonauth's modules tell each other during a request; no module reads
or writes another module's request attribute. :func:`of` returns it, creating it on
first use, so it works with or without ``GuestMiddleware`` (a view that calls
``ensure_guest`` itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from anonauth.exceptions import GuestRefused

ATTRIBUTE = "anonauth"
# The documented name of the refusal before ``request.anonauth.refusal`` (deprecated).
LEGACY_REFUSAL_ATTRIBUTE = "anonauth_refusal"


@dataclass
class RequestState:
    """What anonauth knows about one request.

    - ``refusal``: why no guest was created on the lazy path (a :class:`GuestRefused`
      with its ``code``), or ``None``; the view decides what to show.
    - ``replaced_guest_id``: the guest whose session a ``login()`` ended on this request
      (the login links it into the account).
    - ``link_attempted``: this request linked, or tried to link, a guest; a later
      ``login()`` must not link again and the logout some flows do first must not
      delete the guest.
    - ``keep_signed_in``: a guest is upgrading through a social login; allauth's sign-out
      before a social login must spare it.
    - ``unsaved_cookie``: a new guest's session was inserted in its creation's
      transaction; the middleware sets its cookie unless the response saves it anyway.
    - ``metadata``: the metadata the client sent to ``sign-in/`` (validated; ``{}`` on
      the lazy path), for ``ANONAUTH_BEFORE_CREATE`` to read before a guest is created.
    """

    refusal: GuestRefused | None = None
    replaced_guest_id: Any = None
    link_attempted: bool = False
    keep_signed_in: bool = False
    unsaved_cookie: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def refusal_code(self) -> str | None:
        return None if self.refusal is None else self.refusal.code


def of(request: Any) -> RequestState:
    """``request.anonauth``, created on first use (a DRF ``Request`` is unwrapped)."""
    request = django_request(request)
    state: RequestState | None = getattr(request, ATTRIBUTE, None)
    if state is None:
        state = RequestState()
        setattr(request, ATTRIBUTE, state)
    return state


def refuse(request: HttpRequest, refusal: GuestRefused) -> None:
    """Record why the lazy path created no guest (also as the deprecated
    ``request.anonauth_refusal``)."""
    of(request).refusal = refusal
    setattr(django_request(request), LEGACY_REFUSAL_ATTRIBUTE, refusal)


def django_request(request: Any) -> HttpRequest:
    """The Django ``HttpRequest`` behind a DRF ``Request`` (or ``request`` itself)."""
    return getattr(request, "_request", request)  # type: ignore[no-any-return]
