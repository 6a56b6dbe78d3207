"""Benchmarks, run by ``make bench`` against PostgreSQL (never by ``make test``).

Each ``bench_<name>.py`` has a ``main()`` and runs alone as
``python -m tests.benchmarks.bench_<name>``; ``python -m tests.benchmarks`` runs them
all, each in its own process so memory readings don't mix.
"""
