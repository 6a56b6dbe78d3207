"""The benchmark with anonauth: the test settings and the benchmark's one page."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.urls"
