"""The purge against its SQL floor, and its memory at two sizes (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m tests.benchmarks.bench_purge
        [--stale 100000] [--large] [--batch-sizes 500,2000,5000] [--naive] [--repeat 2]

Data, made with set-based SQL: ``--stale`` stale guests each with a cart, three cart
items and a session, plus 10,000 fresh guests and 10,000 registered users with the same,
who must all survive. Each measurement runs on its own copy of that database
(``CREATE DATABASE ... TEMPLATE``): the hand-written set-based SQL delete (the floor),
then ``manage.py purge_anonymous`` in a fresh process whose peak RSS is read from
``/proc/self/status``. ``--large`` repeats the purge at 1,000,000 stale guests to show
that memory is bounded by the batch, not by their number. ``--naive`` adds one plain
``QuerySet.delete()`` of the same users for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.benchmarks.common import benchmark_database, report, setup_django, spread

FRESH = 10_000
REGISTERED = 10_000
ITEMS_PER_CART = 3
LARGE = 1_000_000
# Session data as long as a real guest session's (signed, compressed JSON).
SESSION_DATA = (
    ".eJxVjMsOwiAQRf-FtTEwPAou3fsNZGAGqRqalHZl_Hdt0oVu7znnvkXEba1xG7zEicRFgDj9bgnzk9sO6I"
    "HtPss8t3WZktwVedAhbzPx63q4fw8VR_3WQWVvHCtjPChfVLIhY0BtwYAp2RKSgVScSRp8YA3KDZAdUbB"
    "tKhEbH3_7gDh8:1vPqRz:Xb3nQk2mJ5y8hW0aT7cF4dLgS1eU9iOoP6rZ"
)


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child)
        return
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench_purge needs PostgreSQL (set DATABASE_URL).")
    sizes = [int(s) for s in args.batch_sizes.split(",")] if args.batch_sizes else [None]
    peaks = {
        args.stale: scenario(args.stale, sizes, floor=True, naive=args.naive, repeat=args.repeat)
    }
    if args.large:
        peaks[LARGE] = scenario(LARGE, [None], floor=args.large_floor, naive=False, repeat=1)
        ratio = peaks[LARGE] / peaks[args.stale]
        print(f"\n== memory bound: {args.stale} -> {LARGE} stale guests", flush=True)
        report("peak RSS ratio (<= 1.2 wanted)", f"{ratio:.3f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stale", type=int, default=100_000)
    parser.add_argument("--batch-sizes", help="comma-separated; default ANONAUTH_PURGE_BATCH_SIZE")
    parser.add_argument("--large", action="store_true", help=f"also {LARGE:,} stale guests")
    parser.add_argument("--large-floor", action="store_true", help="the floor at --large too")
    parser.add_argument("--naive", action="store_true", help="also one QuerySet.delete()")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each measurement; the best counts"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def scenario(
    stale: int, batch_sizes: list[int | None], *, floor: bool, naive: bool, repeat: int
) -> int:
    """Measure on ``stale`` stale guests; return the purge's largest peak RSS (kB).

    Each measurement runs ``repeat`` times on fresh copies and the fastest counts: the
    machine may be busy with other work, which only ever slows a run down.
    """
    from django.db import connection

    print(f"\n== {stale:,} stale guests, {FRESH:,} fresh guests, {REGISTERED:,} members")
    with benchmark_database():
        started = time.perf_counter()
        populate(stale)
        report("data generated (set-based SQL)", f"{time.perf_counter() - started:.1f} s")
        template = connection.settings_dict["NAME"]
        connection.close()
        floor_seconds = None
        if floor:
            floor_seconds = min(_floor_once(template, stale) for _ in range(repeat))
            report("floor: hand-written set-based SQL", f"{floor_seconds:.2f} s")
        if naive:
            with copy_of(template) as name:
                naive_seconds = run_child(name, "naive")["seconds"]
                verify(name, stale, sessions=False)  # QuerySet.delete() leaves them
            report("one QuerySet.delete() of the same users", _vs(naive_seconds, floor_seconds))
        peak = 0
        for size in batch_sizes:
            runs = []
            for _ in range(repeat):  # alternating with the floor: a round shares its load
                floor_round = _floor_once(template, stale) if floor else None
                runs.append((_purge_once(template, stale, size), floor_round))
            run = min((r for r, _ in runs), key=lambda r: r["seconds"])
            run["rss_peak_kb"] = max(r["rss_peak_kb"] for r, _ in runs)
            peak = max(peak, run["rss_peak_kb"])
            label = f"purge_anonymous, batches of {run['batch_size']}"
            report(label, _vs(run["seconds"], floor_seconds))
            report("  queries per batch", f"{run['queries'] / max(run['batches'], 1):.1f}")
            report(
                "  peak RSS (process before the purge)",
                f"{run['rss_peak_kb'] / 1024:.1f} MiB ({run['rss_before_kb'] / 1024:.1f} MiB)",
            )
            if floor:
                per_round = [r["seconds"] / f for r, f in runs if f]
                report("  purge / floor, per round", spread(per_round, "{:.2f}"))
        return peak


def _floor_once(template: str, stale: int) -> float:
    with copy_of(template) as name:
        seconds = run_floor(name)
        verify(name, stale)
    return seconds


def _purge_once(template: str, stale: int, batch_size: int | None) -> dict[str, Any]:
    with copy_of(template) as name:
        run = run_child(name, "purge", batch_size=batch_size)
        verify(name, stale)
    return run


def _vs(seconds: float, floor: float | None) -> str:
    if floor is None:
        return f"{seconds:.2f} s"
    return f"{seconds:.2f} s = {seconds / floor:.2f} x floor"


# Data


def populate(stale: int) -> None:
    """Users 1..stale are stale guests, then fresh guests, then members; each has a cart
    with three items and a session."""
    from django.db import connection

    users = stale + FRESH + REGISTERED
    guests = stale + FRESH
    statements = [
        "INSERT INTO shop_product (id, name, price) "
        f"SELECT p, 'product ' || p, 9.99 FROM generate_series(1, {ITEMS_PER_CART}) p",
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, "
        "email, is_staff, is_active, date_joined) "
        "SELECT i, CASE WHEN i <= %(guests)s THEN '!unusable' ELSE 'pbkdf2_sha256$1$salt$hash' END,"
        " false, CASE WHEN i <= %(guests)s THEN 'guest-' ELSE 'member-' END || i, '', '',"
        " CASE WHEN i <= %(guests)s THEN '' ELSE 'member' || i || '@example.com' END,"
        " false, true, now() - interval '90 days' FROM generate_series(1, %(users)s) i",
        "INSERT INTO anonauth_guest (user_id, created_at, last_seen, session_key) "
        "SELECT i, now() - interval '90 days', now() - CASE WHEN i <= %(stale)s "
        "THEN interval '60 days' ELSE interval '1 day' END, md5('s' || i) "
        "FROM generate_series(1, %(guests)s) i",
        "INSERT INTO shop_cart (id, owner_id) SELECT i, i FROM generate_series(1, %(users)s) i",
        "INSERT INTO shop_cartitem (cart_id, product_id, quantity) SELECT c, p, 1 "
        f"FROM generate_series(1, %(users)s) c, generate_series(1, {ITEMS_PER_CART}) p",
        "INSERT INTO django_session (session_key, session_data, expire_date) "
        "SELECT md5('s' || i), %(data)s, now() + interval '30 days' "
        "FROM generate_series(1, %(users)s) i",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(
                sql, {"stale": stale, "guests": guests, "users": users, "data": SESSION_DATA}
            )
        for table in ("auth_user", "shop_cart", "shop_product", "shop_cartitem"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
    connection.close()
    with _autocommit_cursor(connection.settings_dict["NAME"]) as cursor:
        cursor.execute("VACUUM ANALYZE")


def verify(name: str, stale: int, *, sessions: bool = True) -> None:
    """Everyone but the stale guests survived, with all their data (``sessions``: and
    the stale guests' sessions are gone)."""
    users = FRESH + REGISTERED
    expected = {
        "SELECT count(*) FROM auth_user": users,
        f"SELECT count(*) FROM auth_user WHERE id <= {stale}": 0,
        "SELECT count(*) FROM anonauth_guest": FRESH,
        "SELECT count(*) FROM shop_cart": users,
        "SELECT count(*) FROM shop_cartitem": users * ITEMS_PER_CART,
        "SELECT count(*) FROM django_session": users if sessions else users + stale,
    }
    with _autocommit_cursor(name) as cursor:
        for sql, count in expected.items():
            cursor.execute(sql)
            found = cursor.fetchone()[0]
            if found != count:
                raise SystemExit(f"verification failed: {sql} -> {found}, expected {count}")


# Copies of the data


@contextmanager
def copy_of(template: str) -> Iterator[str]:
    name = f"{template}_copy"
    with _maintenance_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    try:
        yield name
    finally:
        with _maintenance_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def _maintenance_cursor() -> Iterator[Any]:
    from django.db import connection

    with connection._nodb_cursor() as cursor:
        yield cursor


@contextmanager
def _autocommit_cursor(name: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(_url(name), autocommit=True) as conn, conn.cursor() as cursor:
        yield cursor


def _url(name: str) -> str:
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


# The floor


FLOOR_SQL = [
    "DELETE FROM shop_cartitem WHERE cart_id IN (SELECT c.id FROM shop_cart c "
    "JOIN anonauth_guest g ON g.user_id = c.owner_id WHERE g.last_seen < %(cutoff)s)",
    "DELETE FROM shop_cart WHERE owner_id IN "
    "(SELECT user_id FROM anonauth_guest WHERE last_seen < %(cutoff)s)",
    "DELETE FROM django_session WHERE session_key IN "
    "(SELECT session_key FROM anonauth_guest WHERE last_seen < %(cutoff)s)",
    "WITH gone AS (DELETE FROM anonauth_guest WHERE last_seen < %(cutoff)s RETURNING user_id) "
    "DELETE FROM auth_user WHERE id IN (SELECT user_id FROM gone)",
]


def run_floor(name: str) -> float:
    """The same rows deleted by hand-written set-based SQL, in one transaction."""
    import psycopg

    with psycopg.connect(_url(name)) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SELECT now() - interval '30 days'")
        cutoff = cursor.fetchone()[0]  # type: ignore[index]
        for sql in FLOOR_SQL:
            cursor.execute(sql, {"cutoff": cutoff})
        conn.commit()
        return time.perf_counter() - started


# The purge, in a process of its own


def run_child(name: str, mode: str, *, batch_size: int | None = None) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": _url(name)}
    spec = json.dumps({"mode": mode, "batch_size": batch_size})
    out = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_purge", "--child", spec],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from anonauth import signals
    from anonauth.conf import conf

    queries = [0]
    batches = [0]

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries[0] += 1
        return execute(sql, params, many, context)

    def on_batch(**kwargs: Any) -> None:
        batches[0] += 1

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    connection.ensure_connection()
    signals.guests_purged.connect(on_batch)
    before = _rss_kb("VmHWM")
    batch_size = spec["batch_size"] or conf.PURGE_BATCH_SIZE
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        if spec["mode"] == "naive":
            get_user_model()._base_manager.filter(
                anonauth_guest__last_seen__lt=_cutoff(conf.MAX_AGE)
            ).delete()
        else:
            with open(os.devnull, "w") as devnull:
                call_command("purge_anonymous", batch_size=batch_size, stdout=devnull)
        seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "queries": queries[0],
        "batches": batches[0],
        "batch_size": batch_size,
        "rss_before_kb": before,
        "rss_peak_kb": _rss_kb("VmHWM"),
    }
    print(json.dumps(result))


def _cutoff(age: Any) -> Any:
    from django.utils import timezone

    return timezone.now() - age


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


if __name__ == "__main__":
    main()
