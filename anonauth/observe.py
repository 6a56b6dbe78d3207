"""Observability: one function per event, which logs it and counts it.

Each event is logged at one place, on a child logger of ``anonauth`` (so a project's
handler on ``anonauth`` sees them all), with a readable message and structured fields
in ``extra``. Records carry no personal data: never an email, username, address,
network, user agent, session key, token or code. A guest's primary key
(``guest_id``) is logged, as a pseudonym; an account's is not.

- ``anonauth.gates``: every refused guest creation (the lazy path) and every refused
  API request, with its code.
- ``anonauth.upgrade``: every upgrade, with its method.
- ``anonauth.link``: every link, with its method and the rows moved and dropped per
  relation (and failed links, logged where they are caught).
- ``anonauth.purge``: every purge batch and every run's total.
- ``anonauth.transfer``: transfer codes issued, redeemed, refused.

The counters of :mod:`anonauth.metrics` move here too (refusals, purge durations) or
in receivers of the same signals (creations, upgrades, links, purges): no query.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from anonauth import metrics, state

if TYPE_CHECKING:
    from django.http import HttpRequest

    from anonauth.purge import PurgeResult, Shard

gates = logging.getLogger("anonauth.gates")
upgrades = logging.getLogger("anonauth.upgrade")
links = logging.getLogger("anonauth.link")
purges = logging.getLogger("anonauth.purge")
transfers = logging.getLogger("anonauth.transfer")

# Refusals that say the site, not the client, has a problem.
UNAVAILABLE_CODES = frozenset({"unavailable", "before_create_failed"})


def refused(request: Any, code: str, *, where: str, status: int | None = None) -> None:
    """A guest creation or an API request was refused with ``code``.

    ``where`` is ``"lazy"`` (the lazy path: the visitor stays anonymous), ``"api"``
    (an error response of the HTTP API, ``status`` its HTTP status) or ``"page"`` (the
    transfer code page)."""
    django_request = state.django_request(request)
    match = getattr(django_request, "resolver_match", None)
    server_side = code in UNAVAILABLE_CODES or (status is not None and status >= 500)
    gates.log(
        logging.WARNING if server_side else logging.INFO,
        "anonauth: %s refused (%s): %s",
        "guest creation" if where == "lazy" else "request",
        where,
        code,
        extra={
            "event": "refused",
            "code": code,
            "where": where,
            "status": status,
            "view": getattr(match, "view_name", None),
            "http_method": getattr(django_request, "method", None),
        },
    )
    metrics.count_refusal(code)


def on_guest_upgraded(sender: Any, user: Any, method: str = "", **kwargs: Any) -> None:
    """``guest_upgraded`` (after commit): log the upgrade."""
    upgrades.info(
        "anonauth: guest %s upgraded (%s)",
        user.pk,
        method,
        extra={"event": "upgraded", "guest_id": user.pk, "method": method},
    )


def on_guest_linked(sender: Any, guest_id: Any, result: Any, **kwargs: Any) -> None:
    """``guest_linked`` (after commit): log the link and what it moved and dropped."""
    links.info(
        "anonauth: guest %s linked (%s): %d rows moved, %d dropped in conflicts",
        guest_id,
        result.method,
        sum(result.moved.values()),
        sum(result.dropped.values()),
        extra={
            "event": "linked",
            "guest_id": guest_id,
            "method": result.method,
            "moved": dict(result.moved),
            "dropped": dict(result.dropped),
            "guest_deleted": result.guest_deleted,
        },
    )


def purge_batch(shard: Shard, before: PurgeResult, after: PurgeResult, seconds: float) -> None:
    """One purge batch committed: what it examined, purged, spared and kept."""
    counts = _purge_counts(after, minus=before)
    purges.info(
        "anonauth: purge batch: %d purged of %d examined in %.3f s",
        counts["purged"],
        counts["examined"],
        seconds,
        extra={"event": "purge_batch", "shard": _shard(shard), "seconds": seconds, **counts},
    )


def purge_run(shard: Shard, result: PurgeResult) -> None:
    """A purge run (or one shard of a spread run) ended: its totals and duration."""
    counts = _purge_counts(result)
    purges.info(
        "anonauth: purge %s: %d purged of %d examined in %d batches, %.3f s",
        "dry run" if result.dry_run else "run",
        counts["purged"],
        counts["examined"],
        result.batches,
        result.seconds,
        extra={
            "event": "purge_run",
            "shard": _shard(shard),
            "seconds": result.seconds,
            "batches": result.batches,
            "sessions": result.sessions,
            **counts,
        },
    )
    if not result.dry_run:
        metrics.observe_purge(result.seconds)


def purge_spread(summary: dict[str, Any]) -> None:
    """A purge spread over shard tasks ended (``anonauth.purge_sum``): the sum."""
    purges.info(
        "anonauth: purge over %d shards %s: %d purged of %d examined, %.3f s",
        summary["shards"],
        summary["status"],
        summary["purged"],
        summary["examined"],
        summary["seconds"],
        extra={
            "event": "purge_spread",
            "status": summary["status"],
            "shards": summary["shards"],
            "failed": len(summary["failed"]),
            "seconds": summary["seconds"],
            "dry_run": summary["dry_run"],
            **{name: summary[name] for name in ("examined", "purged", "spared", "blocked")},
        },
    )


def _purge_counts(result: PurgeResult, *, minus: PurgeResult | None = None) -> dict[str, Any]:
    names = ("examined", "purged", "spared", "blocked")
    counts: dict[str, Any] = {
        name: getattr(result, name) - (getattr(minus, name) if minus else 0) for name in names
    }
    counts["dry_run"] = result.dry_run
    return counts


def _shard(shard: Shard) -> list[Any] | None:
    """A shard's primary-key bounds (``None``: the whole purge)."""
    if shard.after is None and shard.upto is None:
        return None
    return [shard.after, shard.upto]


def transfer_issued(guest_id: Any, seconds: int) -> None:
    transfers.info(
        "anonauth: transfer code issued for guest %s",
        guest_id,
        extra={"event": "transfer_issued", "guest_id": guest_id, "expires_in": seconds},
    )


def transfer_redeemed(guest_id: Any, *, ended_first_session: bool) -> None:
    transfers.info(
        "anonauth: guest %s continued on another device",
        guest_id,
        extra={
            "event": "transfer_redeemed",
            "guest_id": guest_id,
            "ended_first_session": ended_first_session,
        },
    )


def transfer_refused(request: HttpRequest, action: str, code: str) -> None:
    """Issuing or redeeming a transfer code was refused (``action``: issue, redeem)."""
    # Only an issuing guest is known (``not_guest``: a registered user, not logged).
    guest_id = request.user.pk if action == "issue" and code != "not_guest" else None
    transfers.log(
        logging.WARNING if code == "invalid_transfer_code" else logging.INFO,
        "anonauth: transfer code %s refused: %s",
        action,
        code,
        extra={"event": "transfer_refused", "action": action, "code": code, "guest_id": guest_id},
    )
