"""The creation policy's cost: ``ANONAUTH_BEFORE_CREATE`` and ``ANONAUTH_LIVE_GUEST_CAP``.

    DATABASE_URL=postgres://... python -m tests.benchmarks.bench_policy

Counts the statements of a returning guest's request and of a guest's creation (the
lazy path, a ``@guest_allowed`` view), with the hook and the cap off and on; EXPLAINs
the cap's count; times creations alternating off and on (median and spread).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from tests.benchmarks.common import benchmark_database, report, setup_django

RUNS = 40
HOOK = "tests.testapp.policy_hooks.refuse_beta"
ON = {"ANONAUTH_BEFORE_CREATE": HOOK, "ANONAUTH_LIVE_GUEST_CAP": 1000, "ANONAUTH_RATE_LIMIT": None}
OFF = {"ANONAUTH_BEFORE_CREATE": None, "ANONAUTH_LIVE_GUEST_CAP": None, "ANONAUTH_RATE_LIMIT": None}
LAZY = "/guest-fn/"


def browser() -> Any:
    from django.test import Client

    from anonauth.test import BROWSER_USER_AGENT

    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, REMOTE_ADDR="198.51.100.7")
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


def explain_count() -> str:
    from django.db import connection

    sql = next(q for q in creation(ON)[1] if "COUNT" in q.upper())
    with connection.cursor() as cursor:
        prefix = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        cursor.execute(prefix + sql)
        plan = " | ".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
    return plan


def spread(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=4)
    return f"median {statistics.median(samples) * 1000:.2f} ms, IQR {(q[2] - q[0]) * 1000:.2f} ms"


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.db import connection

    with benchmark_database():
        print(f"  {connection.vendor}, {RUNS} runs per figure, {settings.SETTINGS_MODULE}")
        for label, values in (("off", OFF), ("on", ON)):
            report(
                f"statements of a returning guest's request, policy {label}",
                str(len(steady(values))),
            )
        off, on = creation(OFF)[1], creation(ON)[1]
        report("statements of a creation, policy off", str(len(off)))
        report("statements of a creation, hook + cap on", str(len(on)))
        for sql in on:
            if sql.startswith(("SELECT pg_advisory", "SELECT COUNT(*)")):
                report("  added", sql[:90])
        report("plan of the cap's count", explain_count()[:200])
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(RUNS):  # alternating, so machine load affects both alike
            times["off"].append(creation(OFF)[0])
            times["on"].append(creation(ON)[0])
        for label, samples in times.items():
            report(f"creation time, policy {label}", spread(samples))


if __name__ == "__main__":
    main()
