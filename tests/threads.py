"""Running code in threads released at the same moment, for the PostgreSQL race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

BARRIER_TIMEOUT = 30  # seconds; only reached if the code under test deadlocks


def run_together(*tasks: Callable[[], Any]) -> list[Any]:
    """Run ``tasks`` in threads released at the same moment; return results or errors.

    Each thread uses its own database connection and closes it when done.
    """
    barrier = threading.Barrier(len(tasks), timeout=BARRIER_TIMEOUT)
    results: list[Any] = [None] * len(tasks)

    def run(index: int, task: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = task()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
