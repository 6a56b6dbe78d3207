"""One ``upgrade_guest`` with a request: its queries and time, the password hash apart.

    DATABASE_URL=postgres://... python -m tests.benchmarks.bench_upgrade

The upgrade's own work is timed with a near-free hasher (MD5); the Argon2 hash (the
recommended first of ``PASSWORD_HASHERS``) is timed alone, and the upgrade with it,
interleaved; each figure is reported with its spread (no target, no verdict).
``DJANGO_SETTINGS_MODULE=tests.settings_allauth`` adds allauth's
``EmailAddress`` check.
"""

from __future__ import annotations

import time
from typing import Any

from tests.benchmarks.common import benchmark_database, report, setup_django, spread

RUNS = 30
WARMUP = 5
ARGON2 = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
# A near-free hasher, to time the upgrade's own work without the hash.
FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PASSWORD = "correct horse battery staple"


def guest_request(user: Any) -> Any:
    """A request signed in as the guest ``user``, its session loaded like a view's."""
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from anonauth.sessions import start_guest_session

    request = RequestFactory().post("/auth/anonymous/upgrade/")
    SessionMiddleware(lambda request: HttpResponse()).process_request(request)
    request.session.save()
    start_guest_session(request, user)
    request.session.save()
    request.session.items()  # loaded, as any view that read the session has it
    return request


def upgrade_once(index: int) -> tuple[float, list[str]]:
    """Upgrade a new guest with its request; return the wall time and the SQL run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from anonauth.guests import create_guest
    from anonauth.upgrade import upgrade_guest

    guest = create_guest()
    request = guest_request(guest)
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        upgrade_guest(guest, email=f"user{index}@example.com", password=PASSWORD, request=request)
        elapsed = time.perf_counter() - start
    return elapsed, [query["sql"] for query in queries.captured_queries]


def hash_once() -> float:
    from django.contrib.auth.hashers import make_password

    start = time.perf_counter()
    make_password(PASSWORD)
    return time.perf_counter() - start


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings

    with benchmark_database():
        print(f"  {connection.vendor}, {RUNS} runs per figure, {settings.SETTINGS_MODULE}")
        with override_settings(PASSWORD_HASHERS=FAST):
            for i in range(WARMUP):
                upgrade_once(-i - 1)
            fast = [upgrade_once(i) for i in range(RUNS)]
        with override_settings(PASSWORD_HASHERS=ARGON2):
            hashes, argon = [], []
            for i in range(RUNS):  # interleaved, so machine load affects both alike
                hashes.append(hash_once())
                argon.append(upgrade_once(RUNS + i)[0])
        queries = fast[-1][1]
        report("queries of one upgrade_guest(request=...)", str(len(queries)))
        for sql in queries:
            report("", sql[:90])
        report("query counts seen over all runs", str(sorted({len(q) for _, q in fast})))
        report("upgrade, hash excluded (MD5 hasher): ms", ms_spread([e for e, _ in fast]))
        report("Argon2 make_password alone: ms", ms_spread(hashes))
        report("upgrade, Argon2 hash included: ms", ms_spread(argon))


def ms_spread(seconds: list[float]) -> str:
    return spread([s * 1000 for s in seconds], "{:.2f}")


if __name__ == "__main__":
    main()
