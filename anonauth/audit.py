"""Audit events: a persisted record of guest lifecycle events, with no personal data.

Receivers of anonauth's signals write one :class:`~anonauth.models.AuditEvent` per
event (per purge batch, with its count) while ``ANONAUTH_AUDIT`` is on; every signal is
sent after commit, so an event is recorded only for what really happened. A creation's
event is written by the creation itself, in its transaction (one commit per guest).
:func:`activity` sums them per day for the admin's chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import router
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from anonauth import inserts
from anonauth.conf import conf
from anonauth.models import AuditEvent


def record(kind: str, *, count: int = 1, method: str = "") -> None:
    """Write one event, unless auditing is off or nothing happened."""
    if conf.AUDIT and count > 0:
        event = AuditEvent(kind=kind, count=count, method=method)
        inserts.save(event, using=router.db_for_write(AuditEvent, instance=event))


def on_guest_upgraded(sender: Any, method: str = "", **kwargs: Any) -> None:
    record(AuditEvent.UPGRADED, method=method)


def on_guest_linked(sender: Any, **kwargs: Any) -> None:
    record(AuditEvent.LINKED)


def on_guest_deleted(sender: Any, **kwargs: Any) -> None:
    record(AuditEvent.DELETED)


def on_guests_purged(sender: Any, user_ids: list[Any], **kwargs: Any) -> None:
    record(AuditEvent.PURGED, count=len(user_ids))


@dataclass
class Day:
    """The events of one day, by kind."""

    day: date
    counts: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> int:
        return self.counts.get(kind, 0)


def activity(days: int = 30, *, today: date | None = None) -> list[Day]:
    """The last ``days`` days (oldest first, today included), summed by kind: one query."""
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    series = {start + timedelta(days=i): Day(start + timedelta(days=i)) for i in range(days)}
    since = timezone.make_aware(datetime.combine(start, time.min))  # uses the index on at
    rows = (
        AuditEvent.objects.filter(at__gte=since)
        .annotate(day=TruncDate("at"))
        .values("day", "kind")
        .annotate(total=Sum("count"))
    )
    for row in rows:
        if row["day"] in series:
            series[row["day"]].counts[row["kind"]] = row["total"]
    return list(series.values())


def totals(series: list[Day]) -> dict[str, int]:
    return {kind: sum(day[kind] for day in series) for kind, _label in AuditEvent.KINDS}


def conversion_rate(series: list[Day]) -> float | None:
    """Guests that became accounts (upgraded or linked) per guest created; None if none."""
    summed = totals(series)
    created = summed[AuditEvent.CREATED]
    if not created:
        return None
    return (summed[AuditEvent.UPGRADED] + summed[AuditEvent.LINKED]) / created
