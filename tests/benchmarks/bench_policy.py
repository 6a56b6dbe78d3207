"""The cost of the creation policy and of the metrics: ``ANONAUTH_BEFORE_CREATE``,
``ANONAUTH_LIVE_GUEST_CAP`` and ``ANONAUTH_METRICS``.

    DATABASE_URL=postgres://... python -m tests.benchmarks.bench_policy

Counts the statements of a returning guest's request and of a guest's creation (the
lazy path, a ``@guest_allowed`` view) with everything off, with the hook and the cap
on, and with the hook, the cap and the metrics on; EXPLAINs the cap's count; times
creations on the three sides in ``BENCH_ROUNDS`` alternating rounds of ``REPEAT``
creations per side, and judges each round's ratios by their spread
(:func:`tests.benchmarks.common.judge`): all on / all off against ``TARGET`` (chosen
before the first run), and metrics on / off (the hook and the cap on both) against
``METRICS_TARGET``. Exits 1 if the metrics add a statement or fail their target.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

from tests.benchmarks.common import (
    alternate,
    benchmark_database,
    judge,
    ratios,
    report,
    setup_django,
)
from tests.benchmarks.common import spread as spread_of

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "21"))
REPEAT = 10
TARGET = 1.2  # hook + cap + metrics cost at most a fifth of a creation
METRICS_TARGET = 1.05  # the metrics alone: within the noise
HOOK = "tests.testapp.policy_hooks.refuse_beta"
OFF = {
    "ANONAUTH_BEFORE_CREATE": None,
    "ANONAUTH_LIVE_GUEST_CAP": None,
    "ANONAUTH_RATE_LIMIT": None,
    "ANONAUTH_METRICS": False,
}
ON = {**OFF, "ANONAUTH_BEFORE_CREATE": HOOK, "ANONAUTH_LIVE_GUEST_CAP": 1000}
ALL = {**ON, "ANONAUTH_METRICS": True}
SIDES = {"off": OFF, "hook + cap on": ON, "hook + cap + metrics on": ALL}
LAZY = "/guest-fn/"
_addresses = iter(range(1, 10**6))


def browser() -> Any:
    from django.test import Client

    from anonauth.test import BROWSER_USER_AGENT

    # A network of its own per visitor (the cap counts per /24: never reached here).
    n = next(_addresses)
    address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, REMOTE_ADDR=address)
    client.cookies["probe"] = "1"
    return client


def captured(run: Any) -> tuple[float, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
    return elapsed, [query["sql"] for query in queries.captured_queries]


def steady(values: dict[str, Any]) -> list[str]:
    from django.test.utils import override_settings

    with override_settings(**values):
        client = browser()
        client.get(LAZY)
        return captured(lambda: client.get(LAZY))[1]


def creation(values: dict[str, Any]) -> tuple[float, list[str]]:
    from django.test.utils import override_settings

    with override_settings(**values):
        client = browser()
        return captured(lambda: client.get(LAZY))


def median_creation(values: dict[str, Any]) -> float:
    """The median seconds of ``REPEAT`` creations under ``values`` (statements not
    captured: the capture has a cost of its own)."""
    from django.test.utils import override_settings

    samples = []
    with override_settings(**values):
        for _ in range(REPEAT):
            client = browser()
            start = time.perf_counter()
            client.get(LAZY)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def explain_count() -> str:
    from django.db import connection

    sql = next(q for q in creation(ON)[1] if "COUNT" in q.upper())
    with connection.cursor() as cursor:
        prefix = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        cursor.execute(prefix + sql)
        plan = " | ".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
    return plan


def main() -> int:
    setup_django()
    from django.conf import settings
    from django.db import connection

    with benchmark_database():
        print(f"  {connection.vendor}, {settings.SETTINGS_MODULE}")
        counted = {label: (steady(v), creation(v)[1]) for label, v in SIDES.items()}
        for label, (request, _created) in counted.items():
            report(f"statements of a returning guest's request, {label}", str(len(request)))
        for label, (_request, created) in counted.items():
            report(f"statements of a creation, {label}", str(len(created)))
        for sql in counted["hook + cap on"][1]:
            if sql.startswith(("SELECT pg_advisory", "SELECT COUNT(*)")):
                report("  added by the cap", sql[:90])
        report("plan of the cap's count", explain_count()[:200])
        metrics_free = [len(s) for s in counted["hook + cap on"]] == [
            len(s) for s in counted["hook + cap + metrics on"]
        ]
        report("statements added by the metrics", "0" if metrics_free else "SOME: FAIL")
        for values in SIDES.values():  # warm every side up
            median_creation(values)
        times = alternate(
            {label: (lambda v=values: median_creation(v)) for label, values in SIDES.items()},
            ROUNDS,
        )
        print(f"  {ROUNDS} rounds of {REPEAT} creations per side, alternating; median per round")
        for label, samples in times.items():
            report(f"ms per creation, {label}", spread_of([t * 1e3 for t in samples], "{:.2f}"))
        off, policy, every = times.values()
        judge("time ratio all on / all off", ratios(every, off), at_most=TARGET)
        report("time ratio hook + cap on / all off", spread_of(ratios(policy, off)))
        metrics_pass = judge(
            "time ratio metrics on / off (hook + cap on both)",
            ratios(every, policy),
            at_most=METRICS_TARGET,
        )
    return 0 if metrics_free and metrics_pass else 1


if __name__ == "__main__":
    sys.exit(main())
