"""The foundation's costs: a guest's request against a project without anonauth, the
queries that create a guest, and the zero queries of crawlers and cookieless clients.

Run: ``DATABASE_URL=postgres://... python -m tests.benchmarks.bench_guests``. Each
configuration runs in its own process (their settings differ): ``guest`` with anonauth
(``tests.settings_bench``), ``plain`` without it (``tests.settings_bench_plain``); both
serve the same view body at ``/page/`` through the full handler of the test ``Client``
with database sessions. Both processes stay up, each on its own test database, and the
parent asks them in turn for ``ROUNDS`` timed rounds (alternating which goes first), and
judges the rounds' ratios by their spread (:func:`tests.benchmarks.common.judge`): a
round's two sides ran under the same load from other processes. Exits 1 when a query
count is over its target or the time ratio FAILs (its whole interquartile range above).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

from tests.benchmarks.common import (
    FAIL,
    PASS,
    Side,
    alternate,
    benchmark_database,
    judge,
    ratios,
    report,
    serve_rounds,
    setup_django,
    spread,
)

PAGE = "/page/"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CSRF_SECRET = "b" * 32
ROUNDS = 15
REPEAT = 300
WARMUP = 50

MAX_TIME_RATIO = 1.10
MAX_CREATION_QUERIES = 5
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.I)
SETTINGS = {"guest": "tests.settings_bench", "plain": "tests.settings_bench_plain"}


# The measuring processes


def serve(kind: str) -> None:
    """Set up ``kind``, print its query counts, then answer ``time N`` lines on stdin."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS[kind]
    setup_django(SETTINGS[kind])
    from django.db import connection

    test_name = f"test_{connection.settings_dict['NAME']}_bench_{kind}"
    connection.settings_dict["TEST"]["NAME"] = test_name  # the two processes run together
    with benchmark_database():
        serve_rounds(measure_guest if kind == "guest" else measure_plain, warmup=WARMUP)


def measure_plain() -> dict[str, Any]:
    """A registered user's request, anonauth not installed."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(username="registered", password="x")
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    return {"request": request_queries(client), "timed": timed_get(client)}


def measure_guest() -> dict[str, Any]:
    """A guest's request, and the queries of creation, crawlers and cookieless clients."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    fresh = Client(HTTP_USER_AGENT=BROWSER)
    fresh.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    creation = queries_of(lambda: fresh.get(PAGE))
    assert_guest(fresh)

    anonymous = SessionStore()
    anonymous.update({"cart": ["sku-1"], "language": "fr"})
    anonymous.create()
    returning = Client(HTTP_USER_AGENT=BROWSER)
    returning.cookies[settings.SESSION_COOKIE_NAME] = str(anonymous.session_key)
    creation_with_session = queries_of(lambda: returning.get(PAGE))
    assert_guest(returning)

    crawler = Client(HTTP_USER_AGENT=CRAWLER)
    cookieless = Client(HTTP_USER_AGENT=BROWSER)
    return {
        "request": request_queries(fresh),
        "timed": timed_get(fresh),
        "creation": creation,
        "creation_with_session": creation_with_session,
        "crawler": queries_of(lambda: crawler.get(PAGE)),
        "cookieless": queries_of(lambda: cookieless.get(PAGE)),
    }


def assert_guest(client: Any) -> None:
    from anonauth.models import Guest

    user_id = client.session.get("_auth_user_id")
    if user_id is None or not Guest.objects.filter(user_id=user_id).exists():
        raise SystemExit("the request did not create a guest")


def timed_get(client: Any) -> Callable[[], None]:
    """``GET /page/`` by ``client``, checked to answer for a signed-in user."""

    def get() -> None:
        response = client.get(PAGE)
        if response.status_code != 200 or response.content == b"user None":
            raise SystemExit(f"unexpected answer: {response.status_code} {response.content!r}")

    return get


def request_queries(client: Any) -> list[str]:
    return queries_of(timed_get(client))


def queries_of(func: Callable[[], Any]) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        func()
    return [query["sql"] for query in context.captured_queries]


# The report


def shorten(sql: str, width: int = 110) -> str:
    sql = re.sub(r"\s+", " ", sql)
    sql = re.sub(r'\((?:"[^"]+"(?:, )?){4,}\)', "(...)", sql)  # long column lists
    sql = re.sub(r"\((?:(?:%s|'[^']*'|[\w.:+-]+)(?:, )?){4,}\)", "(...)", sql)  # long values
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def print_queries(label: str, statements: list[str], limit: int) -> bool:
    """Report the queries against ``limit``; transaction control is listed, not counted."""
    queries = [sql for sql in statements if not TRANSACTION_CONTROL.match(sql)]
    ok = len(queries) <= limit
    control = len(statements) - len(queries)
    extra = f" + {control} BEGIN/COMMIT" if control else ""
    report(label, f"{len(queries)} queries{extra} (target <= {limit}) {verdict(ok)}")
    for number, sql in enumerate(statements, 1):
        print(f"      {number}. {shorten(sql)}")
    return ok


def print_report(guest: Side, plain: Side, times: dict[str, list[float]]) -> bool:
    plain_queries = len(plain.facts["request"])
    results = [
        print_queries("registered user, anonauth not installed", plain.facts["request"], 2),
        print_queries("existing guest, guest_allowed view", guest.facts["request"], plain_queries),
    ]
    for label, kind in (
        ("registered user, anonauth not installed", "plain"),
        ("existing guest, guest_allowed view", "guest"),
    ):
        report(f"{label}: ms", spread([t * 1e3 for t in times[kind]]))
    results.append(
        judge(
            "time ratio guest / plain, per round",
            ratios(times["guest"], times["plain"]),
            at_most=MAX_TIME_RATIO,
        )
    )
    results += [
        print_queries(
            "create a guest: fresh browser, CSRF cookie",
            guest.facts["creation"],
            MAX_CREATION_QUERIES,
        ),
        print_queries(
            "create a guest: browser with an anonymous session",
            guest.facts["creation_with_session"],
            MAX_CREATION_QUERIES,
        ),
        print_queries("crawler on a guest_allowed view", guest.facts["crawler"], 0),
        print_queries("cookieless client on a guest_allowed view", guest.facts["cookieless"], 0),
    ]
    return all(results)


def main() -> int:
    if len(sys.argv) > 1:
        serve(sys.argv[1])
        return 0
    plain = Side("tests.benchmarks.bench_guests", "plain")
    try:
        guest = Side("tests.benchmarks.bench_guests", "guest")
        try:
            times = alternate(
                {
                    "guest": lambda: guest.time_round(REPEAT),
                    "plain": lambda: plain.time_round(REPEAT),
                },
                ROUNDS,
            )
        finally:
            guest.stop()
    finally:
        plain.stop()
    return 0 if print_report(guest, plain, times) else 1


if __name__ == "__main__":
    sys.exit(main())
