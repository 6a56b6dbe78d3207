"""What every benchmark needs: Django set up on a throwaway database, and timers."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


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
