"""What every benchmark needs: Django set up on a throwaway database, timers, and
alternating rounds judged by their spread (:func:`judge`)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def setup_django(settings_module: str = "tests.settings") -> None:
    """Configure Django; refuse to run on SQLite unless ``BENCH_ALLOW_SQLITE`` is set."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    if "DATABASE_URL" not in os.environ and not os.environ.get("BENCH_ALLOW_SQLITE"):
        raise SystemExit("Benchmarks run on PostgreSQL: set DATABASE_URL (make bench does).")
    import django

    django.setup()


@contextmanager
def benchmark_database() -> Iterator[None]:
    """Create ``test_<NAME>``, migrate it, and drop it afterwards (like the test runner)."""
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def median_seconds(func: Callable[[], Any], *, repeat: int = 50, warmup: int = 5) -> float:
    """The median wall time of ``func()`` over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


# Rounds, spreads and verdicts: benchmarks that do not cry wolf.
#
# A benchmark measures its sides in alternating rounds (the order rotating), so that each
# round's sides share the machine's load, and judges the per-round values (usually
# ratios) by their interquartile range: PASS when the whole range meets the target, FAIL
# only when the whole range misses it, INCONCLUSIVE (rerun with more rounds, or on a
# quieter machine) when the range straddles it.

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE (rerun with more rounds)"


def alternate(sides: dict[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """Call each side once per round, the order rotating; return each side's values."""
    names = list(sides)
    values: dict[str, list[T]] = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(sides[name]())
    return values


def ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """Each round's ``numerator / denominator``."""
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """The first quartile, the median and the third quartile (inclusive method)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    low, middle, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, middle, high


def verdict(
    values: list[float], *, at_most: float | None = None, at_least: float | None = None
) -> str:
    """PASS when the interquartile range of ``values`` meets the target, FAIL when it
    lies wholly on the wrong side, INCONCLUSIVE when it straddles the target."""
    low, _middle, high = quartiles(values)
    if at_most is not None:
        return PASS if high <= at_most else FAIL if low > at_most else INCONCLUSIVE
    if at_least is not None:
        return PASS if low >= at_least else FAIL if high < at_least else INCONCLUSIVE
    raise ValueError("verdict() needs at_most or at_least")


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    """``median [IQR q1-q3] (min-max, n rounds)``."""
    low, middle, high = quartiles(values)
    shown = [fmt.format(v) for v in (middle, low, high, min(values), max(values))]
    return (
        f"{shown[0]} [IQR {shown[1]}-{shown[2]}] (min-max {shown[3]}-{shown[4]}, n={len(values)})"
    )


def judge(
    label: str,
    values: list[float],
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    fmt: str = "{:.3f}",
) -> bool:
    """Report ``values`` against the target; return False only for a FAIL."""
    target = f"<= {at_most}" if at_most is not None else f">= {at_least}"
    result = verdict(values, at_most=at_most, at_least=at_least)
    report(label, f"{spread(values, fmt)} (target {target}) {result}")
    return result != FAIL


# Measuring processes: one per side (their settings differ), kept up for every round.


def serve_rounds(setup: Callable[[], dict[str, Any]], *, warmup: int) -> None:
    """In a side's process: print ``setup()``'s facts (its ``"timed"`` callable taken out)
    as one JSON line, then answer each ``time N`` line on stdin with the median seconds
    of N calls."""
    facts = setup()
    timed = facts.pop("timed")
    send(facts)
    for line in sys.stdin:
        command, _, argument = line.partition(" ")
        if command != "time":
            break
        send(median_seconds(timed, repeat=int(argument), warmup=warmup))


def send(value: Any) -> None:
    print(json.dumps(value), flush=True)


class Side:
    """A measuring process (``python -m <module> <kind>``): its facts, and timed rounds."""

    def __init__(self, module: str, kind: str, env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.facts: dict[str, Any] = self.receive()

    def receive(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.kind} process exited early")
        return json.loads(line)

    def time_round(self, repeat: int) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"time {repeat}\n")
        self.process.stdin.flush()
        seconds: float = self.receive()
        return seconds

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # ends the loop; the test database is dropped
        self.process.wait(timeout=120)
