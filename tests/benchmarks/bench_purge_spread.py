"""The purge spread over Celery workers: 1 worker against 2, against the SQL floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/12 \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \\
        python -m tests.benchmarks.bench_purge_spread --stale 1000000 --rounds 3

(``make bench-purge-spread STALE=1000000 ROUNDS=3`` sets the URLs.) Opt-in: ``make bench``
runs every ``bench_*`` module without arguments, and this one then only says how to run
it, unless ``BENCH_PURGE_SPREAD=1`` is set, since a million guests take a while.

The data is ``bench_purge``'s (``--stale`` stale guests, each with a cart, three items
and a session, beside 10,000 fresh guests and 10,000 members who must survive). Every
round measures three sides, in an order that rotates from round to round, each on its
own copy of the data: the hand-written set-based SQL delete (the floor); one real
Celery worker process (``--pool=solo``) running ``anonauth.purge_anonymous`` with
``shards=1``, the single purge; and two worker processes running it with ``shards=2``.
The workers are started and answering before the clock starts; the time is from sending
the task to its result. Peak RSS is each worker's ``VmHWM`` when its run is done.

Targets: 2 workers in at most 0.7 x one worker's time, each worker's peak RSS within
1.2 x the single worker's. Judged like every benchmark (common.verdict): PASS when the
interquartile range of the round-by-round ratios meets the target, FAIL when it lies
wholly above it, INCONCLUSIVE otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.benchmarks import common
from tests.benchmarks.bench_purge import copy_of, populate, run_floor, verify
from tests.benchmarks.common import benchmark_database, report, setup_django

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.benchmarks.spread_settings"
TIME_TARGET = 0.7
MEMORY_TARGET = 1.2
READY_TIMEOUT = 60
RUN_TIMEOUT = 3600
SIDES = ("floor", "1 worker", "2 workers")


def main() -> None:
    if len(sys.argv) == 1 and not os.environ.get("BENCH_PURGE_SPREAD"):
        print("  skipped (opt-in): make bench-purge-spread, or set BENCH_PURGE_SPREAD=1")
        return
    args = parse_args()
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if not os.environ.get(name, "").startswith("redis"):
            raise SystemExit(f"bench_purge_spread needs Redis: set {name}.")
    setup_django(SETTINGS)
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench_purge_spread needs PostgreSQL (set DATABASE_URL).")
    print(f"\n== {args.stale:,} stale guests, {args.rounds} rounds, sides alternating")
    with benchmark_database():
        started = time.perf_counter()
        populate(args.stale)
        report("data generated (set-based SQL)", f"{time.perf_counter() - started:.1f} s")
        template = connection.settings_dict["NAME"]
        connection.close()
        rounds = [measure_round(template, args.stale, turn) for turn in range(args.rounds)]
    summarize(rounds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stale", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def measure_round(template: str, stale: int, turn: int) -> dict[str, Any]:
    """One round: each side once, starting with side ``turn`` (mod 3)."""
    order = SIDES[turn % 3 :] + SIDES[: turn % 3]
    found: dict[str, Any] = {}
    for side in order:
        with copy_of(template) as name:
            if side == "floor":
                found[side] = {"seconds": run_floor(name), "peaks_kb": []}
            else:
                found[side] = run_workers(name, workers=int(side[0]))
            verify(name, stale)
        report(f"round {turn + 1}: {side}", _describe(found[side]))
    return found


def _describe(run: dict[str, Any]) -> str:
    peaks = ", ".join(f"{kb / 1024:.0f}" for kb in run["peaks_kb"])
    return f"{run['seconds']:.2f} s" + (f"  (peak RSS MiB: {peaks})" if peaks else "")


# Real workers


def run_workers(name: str, *, workers: int) -> dict[str, Any]:
    """Purge database ``name`` with ``workers`` Celery worker processes, ``shards=workers``."""
    queue = f"anonauth-bench-{uuid.uuid4().hex}"
    with started_workers(name, queue, workers) as processes:
        from tests.celery_app import app

        began = time.perf_counter()
        result = app.send_task(
            "anonauth.purge_anonymous", kwargs={"shards": workers}, queue=queue
        ).get(timeout=RUN_TIMEOUT)
        seconds = time.perf_counter() - began
        peaks = [_rss_peak_kb(process.pid) for process in processes]
    if result["status"] != "done" or result.get("shards", 1) != workers:
        raise SystemExit(f"the purge did not run as asked: {result}")
    return {"seconds": seconds, "peaks_kb": peaks, "result": result}


@contextmanager
def started_workers(name: str, queue: str, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    from urllib.parse import urlsplit

    url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": url,
        "ANONAUTH_TEST_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
    }
    processes = [_worker(env, queue, f"w{i}-{queue}") for i in range(count)]
    try:
        _wait_ready([f"celery@w{i}-{queue}" for i in range(count)])
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _worker(env: dict[str, str], queue: str, hostname: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-n", hostname]
    options = ["--pool=solo", "-Q", queue, "--prefetch-multiplier=1", "--without-gossip"]
    return subprocess.Popen(
        [*command, *options, "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,  # the banner; errors go to stderr
    )


def _wait_ready(hostnames: list[str]) -> None:
    from tests.celery_app import app

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        replies = app.control.ping(destination=hostnames, timeout=1.0)
        if len(replies) == len(hostnames):
            return
    raise SystemExit(f"workers not ready after {READY_TIMEOUT} s")


def _rss_peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("VmHWM not in /proc/<pid>/status")


# The report


def summarize(rounds: list[dict[str, Any]]) -> None:
    print("\n== summary (median, spread over rounds)")
    for side in SIDES:
        times = [r[side]["seconds"] for r in rounds]
        report(side, _spread(times, "s"))
    seconds = {side: [r[side]["seconds"] for r in rounds] for side in SIDES}
    report("1 worker / floor", _spread(_ratios(seconds["1 worker"], seconds["floor"]), "x"))
    report("2 workers / floor", _spread(_ratios(seconds["2 workers"], seconds["floor"]), "x"))
    time_ratios = _ratios(seconds["2 workers"], seconds["1 worker"])
    memory_ratios = _ratios(
        [max(r["2 workers"]["peaks_kb"]) for r in rounds],
        [r["1 worker"]["peaks_kb"][0] for r in rounds],
    )
    verdict("2 workers / 1 worker, time", time_ratios, TIME_TARGET)
    verdict("worker peak RSS, 2 workers / 1 worker", memory_ratios, MEMORY_TARGET)


def verdict(label: str, ratios: list[float], target: float) -> None:
    """The benchmarks' one rule (common.verdict): PASS when the interquartile range of
    the round-by-round ratios is at or below ``target``, FAIL when it lies wholly above,
    INCONCLUSIVE otherwise."""
    word = common.verdict(ratios, at_most=target)
    report(f"{label} (<= {target} wanted)", f"{_spread(ratios, 'x')}  {word}")


def _ratios(tops: list[float], bottoms: list[float]) -> list[float]:
    """Round by round: each ratio compares two sides measured in the same round."""
    return [top / bottom for top, bottom in zip(tops, bottoms, strict=True)]


def _spread(values: list[float], unit: str) -> str:
    low, high = min(values), max(values)
    return f"{statistics.median(values):.3f} {unit} [{low:.3f}-{high:.3f}]"


if __name__ == "__main__":
    main()
