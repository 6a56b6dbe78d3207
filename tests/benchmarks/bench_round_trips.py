"""What one round trip of a guest's creation costs in CPU: this process, its PostgreSQL
backend and Redis, from ``/proc`` (Linux).

Run: ``DATABASE_URL=postgres://... REDIS_URL=redis://... python -m
tests.benchmarks.bench_round_trips`` (``make bench`` runs it too). Before its one
``INSERT``, a creation makes two round trips (``docs/performance.md``, bursts of new
visitors): the rate limit's count in Redis and the user key's ``nextval``. Measured in
alternating rounds, each the CPU of ``CALLS`` calls (divided by them):

- ``nextval``: the key's draw as :mod:`anonauth.inserts` makes it, through Django's cursor;
- ``SELECT 1``: the cheapest statement there is, the same way;
- ``rate limit``: the whole count of a creation (:func:`anonauth.guests.check_rate`: the
  client's address, the key, one ``EVAL``);
- ``EVAL``: the count's script alone, through redis-py.

It reports; there is no target (``bench_burst`` has the one that depends on them).
Skipped without ``REDIS_URL``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.benchmarks.bench_burst import proc_stat
from tests.benchmarks.common import alternate, benchmark_database, report, setup_django, spread

CALLS = int(os.environ.get("ROUND_TRIP_CALLS", "2000"))
ROUNDS = int(os.environ.get("ROUND_TRIP_ROUNDS", "8"))


def cpu_seconds(pid: int) -> float:
    stat = proc_stat(str(pid))
    if stat is None:
        raise SystemExit(f"process {pid} is gone")
    return stat[2]


def measured(call: Callable[[], Any], servers: dict[str, int]) -> Callable[[], dict[str, float]]:
    """A round: ``CALLS`` calls of ``call``; the milliseconds of CPU per call of this
    process (``python``) and of each server process in ``servers``."""

    def round_() -> dict[str, float]:
        before = {name: cpu_seconds(pid) for name, pid in servers.items()}
        start = time.process_time()
        for _ in range(CALLS):
            call()
        spent = {"python": time.process_time() - start}
        spent |= {name: cpu_seconds(pid) - before[name] for name, pid in servers.items()}
        return {name: seconds * 1e3 / CALLS for name, seconds in spent.items()}

    return round_


def main() -> int:
    if not os.environ.get("REDIS_URL"):
        print("  skipped: set REDIS_URL (the rate limit counts in Redis)")
        return 0
    if not os.path.isdir("/proc"):
        print("  skipped: reads /proc (Linux)")
        return 0
    setup_django("tests.benchmarks.burst_settings")
    with benchmark_database():
        return run()


def run() -> int:
    from django.contrib.auth import get_user_model
    from django.core.cache import caches
    from django.db import connection
    from django.test import RequestFactory

    from anonauth import guests, inserts, rates

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    client = rates.redis_client(caches["default"])
    redis_pid = int(client.info("server")["process_id"])
    key_sql, key_params = inserts.key_draw(get_user_model(), connection.alias)

    def statement(sql: str, params: list[Any] | None = None) -> Callable[[], None]:
        def execute() -> None:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                cursor.fetchone()

        return execute

    request = RequestFactory().post("/", HTTP_X_FORWARDED_FOR="203.0.113.7")
    postgres, redis = {"postgres": backend}, {"redis": redis_pid}
    sides = {
        "nextval": measured(statement(f"SELECT {key_sql}", key_params), postgres),
        "SELECT 1": measured(statement("SELECT 1"), postgres),
        "rate limit": measured(
            lambda: guests.check_rate(request, group="bench.round_trips", rate="1000000/h"), redis
        ),
        "EVAL": measured(
            lambda: client.eval(rates.COUNT_SCRIPT, 1, "bench:round_trips", 60), redis
        ),
    }
    for side in sides.values():  # warm up: connections, caches, the script
        side()
    results = alternate(sides, ROUNDS)
    print(f"  CPU per call, ms: median [IQR] (min-max) over {ROUNDS} rounds of {CALLS}")
    for name, rows in results.items():
        for process in rows[0]:
            values = [row[process] for row in rows]
            report(f"{name}: {process}", spread(values))
        totals = [sum(row.values()) for row in rows]
        report(f"{name}: total", f"{statistics.median(totals):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
