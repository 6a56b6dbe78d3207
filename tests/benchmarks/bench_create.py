"""Creating a guest in process: anonauth against django-guest-user, alternating rounds.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m tests.benchmarks.bench_create
    ... python -m tests.benchmarks.bench_create profile [N]   # cProfile of anonauth's side

Each side runs in its own process with the settings of the burst benchmark (the example
project on PostgreSQL, Redis as the cache, database sessions): ``anonauth``
(``tests.benchmarks.burst_settings``) and ``django-guest-user``
(``tests.benchmarks.burst_guestuser_settings``), both answering ``POST /burst/add/``,
the same view body (one cart row) under ``guest_allowed`` or ``@allow_guest_user``.
One creation is one new visitor through Django's WSGI handler, called as a WSGI server
calls it (the middleware chain loaded once per process, the CSRF check enforced): a
browser User-Agent, a CSRF cookie and header, an address of its own (so the
per-address rate limit counts it in Redis). The parent asks the two processes in turn (the order
alternating) for ``ROUNDS`` rounds of the median time of ``REPEAT`` creations, and
judges each round's ratio anonauth / django-guest-user against ``TARGET``
(:func:`tests.benchmarks.common.judge`). Skipped without ``REDIS_URL`` or
django-guest-user (the ``bench`` extra). Exits 1 only on a FAIL.
"""

from __future__ import annotations

import cProfile
import importlib.util
import io
import itertools
import os
import pstats
import secrets
import sys
from collections.abc import Callable
from typing import Any

from tests.benchmarks.common import Side, alternate, judge, ratios, report, spread

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "100"))
WARMUP = 20
TARGET = 0.5  # anonauth's time per creation over django-guest-user's
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
SETTINGS = {
    "anonauth": "tests.benchmarks.burst_settings",
    "guest_user": "tests.benchmarks.burst_guestuser_settings",
}
NAMES = {"anonauth": "anonauth", "guest_user": "django-guest-user"}
_addresses = itertools.count(secrets.randbelow(1 << 20) << 3)


def setup(kind: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS[kind]
    import django

    django.setup()
    from django.db import connection

    connection.settings_dict["TEST"]["NAME"] = (
        f"test_{connection.settings_dict['NAME']}_create_{kind}"
    )


def serve(kind: str) -> None:
    """A side's process: a test database, then timed rounds on request."""
    from tests.benchmarks.common import benchmark_database, serve_rounds

    setup(kind)
    with benchmark_database():
        serve_rounds(lambda: {"queries": creation_queries(), "timed": create_one}, warmup=WARMUP)


_handler: Any = None


def wsgi_handler() -> Any:
    """The process's one WSGI application, its middleware loaded once (as under a WSGI
    server; a test ``Client`` per visitor would load the middleware chain every time)."""
    global _handler
    if _handler is None:
        from django.core.handlers.wsgi import WSGIHandler

        _handler = WSGIHandler()
    return _handler


def create_one() -> None:
    """One new visitor's creating request through Django's WSGI handler, as a WSGI server
    passes it (the CSRF check included), checked to have signed a guest in."""
    n = next(_addresses) % (1 << 24)
    csrf = secrets.token_hex(16)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/burst/add/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",  # the example project's ALLOWED_HOSTS
        "HTTP_USER_AGENT": BROWSER,
        "HTTP_X_FORWARDED_FOR": f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}",
        "HTTP_COOKIE": f"csrftoken={csrf}",
        "HTTP_X_CSRFTOKEN": csrf,
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, headers))

    response = wsgi_handler()(environ, start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()  # request_finished, as a WSGI server does
    status, headers = started[0]
    cookies = [value for name, value in headers if name.lower() == "set-cookie"]
    if (
        not status.startswith("200")
        or not body.startswith(b"guest ")
        or not any(cookie.strip().startswith("sessionid=") for cookie in cookies)
    ):
        raise SystemExit(f"no guest: {status} {body[:80]!r}")


def creation_queries() -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        create_one()
    return [query["sql"] for query in context.captured_queries]


def profile(count: int) -> None:
    """cProfile ``count`` creations on anonauth's side; print the top of the profile."""
    from tests.benchmarks.common import benchmark_database

    setup("anonauth")
    with benchmark_database():
        for _ in range(WARMUP):
            create_one()
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [create_one() for _ in range(count)])
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
    stats.print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def skipped() -> str | None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return "needs DATABASE_URL (PostgreSQL)"
    if not os.environ.get("REDIS_URL"):
        return "needs REDIS_URL (make bench sets it)"
    if importlib.util.find_spec("guest_user") is None:
        return "django-guest-user is not installed (pip install -e '.[bench]')"
    return None


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in SETTINGS:
        serve(sys.argv[1])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "profile":
        profile(int(sys.argv[2]) if len(sys.argv) > 2 else 300)
        return 0
    if (reason := skipped()) is not None:
        print(f"  skipped: {reason}")
        return 0
    sides = {kind: Side("tests.benchmarks.bench_create", kind) for kind in SETTINGS}
    try:
        timers: dict[str, Callable[[], float]] = {
            kind: (lambda side=side: side.time_round(REPEAT)) for kind, side in sides.items()
        }
        times = alternate(timers, ROUNDS)
    finally:
        for side in sides.values():
            side.stop()
    return 0 if print_report(sides, times) else 1


def print_report(sides: dict[str, Any], times: dict[str, list[float]]) -> bool:
    print(f"  {ROUNDS} rounds of {REPEAT} creations per side, alternating; median per round")
    for kind, side in sides.items():
        queries = side.facts["queries"]
        report(f"{NAMES[kind]}: queries of one creating request", str(len(queries)))
        report(f"{NAMES[kind]}: ms per creation", spread([t * 1e3 for t in times[kind]], "{:.2f}"))
    return judge(
        "time ratio anonauth / django-guest-user",
        ratios(times["anonauth"], times["guest_user"]),
        at_most=TARGET,
    )


if __name__ == "__main__":
    sys.exit(main())
