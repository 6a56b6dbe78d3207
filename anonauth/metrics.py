"""Prometheus metrics, with the ``metrics`` extra (``pip install anonauth[metrics]``).

With ``ANONAUTH_METRICS`` on (``True``, or ``"auto"`` when prometheus-client is
installed), ``AnonAuthConfig.ready()`` registers in prometheus-client's default registry:

- counters ``anonauth_guests_created_total``, ``anonauth_guests_upgraded_total``
  (label ``method``), ``anonauth_guests_linked_total``, ``anonauth_guests_purged_total``,
  moved by receivers of anonauth's signals (sent after commit: only what happened counts);
- ``anonauth_refusals_total`` (label ``code``), moved where ``anonauth.gates`` logs a
  refusal (:func:`anonauth.observe.refused`);
- the histogram ``anonauth_purge_duration_seconds``: one observation per purge run (per
  shard of a spread run);
- the gauge ``anonauth_live_guests``: the ``Guest`` rows, counted (one ``COUNT``) by a
  collector when a scrape asks for it, never on a request.

Counting costs no query. Turned off, nothing is registered and nothing is counted.
:func:`metrics_view` serves the registry (also in prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse

from anonauth import db, signals
from anonauth.conf import conf

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

logger = logging.getLogger("anonauth.metrics")

CREATED = "anonauth_guests_created"
UPGRADED = "anonauth_guests_upgraded"
LINKED = "anonauth_guests_linked"
PURGED = "anonauth_guests_purged"
REFUSALS = "anonauth_refusals"
PURGE_DURATION = "anonauth_purge_duration_seconds"
LIVE_GUESTS = "anonauth_live_guests"
# A purge run takes from milliseconds (nothing stale) to an hour (millions of guests).
PURGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, float("inf"))
MULTIPROCESS_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def available() -> bool:
    """Whether prometheus-client is installed."""
    return importlib.util.find_spec("prometheus_client") is not None


def wanted() -> bool:
    """Whether ``ANONAUTH_METRICS`` asks for metrics (``"auto"``: if installed)."""
    setting = conf.METRICS
    return available() if setting == "auto" else setting is True


class LiveGuests:
    """The collector of ``anonauth_live_guests``: one ``COUNT`` per scrape."""

    documentation = "Guests alive now (not purged, upgraded, linked or deleted)."

    def describe(self) -> list[Metric]:
        """Without a sample, so that registering runs no query."""
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily(LIVE_GUESTS, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            count = db.guests().count()
        except DatabaseError:  # the scrape goes on without the gauge
            logger.warning("anonauth: counting live guests for a scrape failed", exc_info=True)
            return
        yield GaugeMetricFamily(LIVE_GUESTS, self.documentation, value=count)


class Metrics:
    """anonauth's metric objects (made once per process, registered while enabled)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.created = Counter(CREATED, "Guests created.", registry=None)
        self.upgraded = Counter(
            UPGRADED, "Guests upgraded in place, by method.", ["method"], registry=None
        )
        self.linked = Counter(LINKED, "Guests linked into an existing account.", registry=None)
        self.purged = Counter(PURGED, "Stale guests purged.", registry=None)
        self.refusals = Counter(
            REFUSALS, "Refused guest creations and API requests, by code.", ["code"], registry=None
        )
        self.purge_duration = Histogram(
            PURGE_DURATION, "Duration of purge runs.", buckets=PURGE_BUCKETS, registry=None
        )
        self.live = LiveGuests()

    def collectors(self) -> Iterable[Any]:
        return (
            self.created,
            self.upgraded,
            self.linked,
            self.purged,
            self.refusals,
            self.purge_duration,
            self.live,
        )


_made: Metrics | None = None
# The registered metrics, or None while they are off.
active: Metrics | None = None


def sync() -> None:
    """Register the metrics if ``ANONAUTH_METRICS`` wants them (and prometheus-client is
    installed: otherwise check ``anonauth.E134`` says so), unregister them otherwise."""
    if wanted() and available():
        install()
    else:
        uninstall()


def install() -> None:
    """Register the metrics in the default registry and connect their receivers."""
    global _made, active
    if active is not None:
        return
    from prometheus_client import REGISTRY

    _made = _made or Metrics()
    for collector in _made.collectors():
        REGISTRY.register(collector)
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, dispatch_uid=f"anonauth.metrics.{receiver.__name__}")
    active = _made


def uninstall() -> None:
    """Unregister the metrics and disconnect their receivers (their values are kept)."""
    global active
    if active is None:
        return
    from prometheus_client import REGISTRY

    for collector in active.collectors():
        REGISTRY.unregister(collector)
    for signal, receiver in RECEIVERS:
        signal.disconnect(dispatch_uid=f"anonauth.metrics.{receiver.__name__}")
    active = None


def on_setting_changed(setting: str, **kwargs: Any) -> None:
    """``setting_changed``: follow ``ANONAUTH_METRICS`` (``override_settings`` in tests)."""
    if setting == "ANONAUTH_METRICS":
        sync()


# Counting (no query): receivers of anonauth's signals, and the calls of anonauth.observe.


def on_guest_created(sender: Any, **kwargs: Any) -> None:
    if active is not None:
        active.created.inc()


def on_guest_upgraded(sender: Any, method: str = "", **kwargs: Any) -> None:
    if active is not None:
        active.upgraded.labels(method=method).inc()


def on_guest_linked(sender: Any, **kwargs: Any) -> None:
    if active is not None:
        active.linked.inc()


def on_guests_purged(sender: Any, user_ids: list[Any], **kwargs: Any) -> None:
    if active is not None:
        active.purged.inc(len(user_ids))


RECEIVERS = (
    (signals.guest_created, on_guest_created),
    (signals.guest_upgraded, on_guest_upgraded),
    (signals.guest_linked, on_guest_linked),
    (signals.guests_purged, on_guests_purged),
)


def count_refusal(code: str) -> None:
    if active is not None:
        active.refusals.labels(code=code).inc()


def observe_purge(seconds: float) -> None:
    if active is not None:
        active.purge_duration.observe(seconds)


# Scraping


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics in Prometheus's text format; 404 while ``ANONAUTH_METRICS`` is off.

    Not protected by anonauth: route it where only Prometheus reaches it (see the
    observability docs). In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) it
    serves every process's counters and this process's count of live guests.
    """
    if active is None:
        raise Http404("ANONAUTH_METRICS is off.")
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def scrape_registry() -> CollectorRegistry:
    """The default registry, or in multiprocess mode one that reads every process's files
    (and counts the live guests)."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if not any(os.environ.get(name) for name in MULTIPROCESS_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(LiveGuests())
    return registry
