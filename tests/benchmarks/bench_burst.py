"""A burst of new visitors against gunicorn: guests/s with anonauth, with django-guest-user,
and with no guest app at all.

Run: ``make bench-load`` (``DATABASE_URL`` = PostgreSQL, ``REDIS_URL`` = Redis). Each side is
a Django project under gunicorn (``WORKERS`` sync workers on a free loopback port) with its
own fresh database (``<DATABASE_URL's name>_burst_<side>``, dropped afterwards) and Redis as
cache. Each visitor makes the one request that creates its guest:

- ``anonauth``: the example shop with anonauth (``tests.benchmarks.burst_settings``);
  ``POST /burst/add/``, a ``guest_allowed`` view writing one cart row (``burst_urls``).
- ``django-guest-user``: the same view under ``@allow_guest_user`` instead
  (``tests.benchmarks.burst_guestuser_*``).
- ``no guest app``: a plain view storing the cart in the anonymous session, one session row
  (``tests.benchmarks.burst_plain_*``).
- ``anonauth shop``: the example shop's own add-to-cart (``guest_allowed``): the guest, the
  product lookup, the cart, its line and a message: more work than the one-row view.

A visitor is one thread's fresh connection with its own cookie jar: a browser User-Agent,
a CSRF cookie (its first cookie, which ``ANONAUTH_REQUIRE_COOKIE`` asks for) and the same
token in ``X-CSRFToken``, and its own address in ``X-Forwarded-For`` (one trusted proxy).
``VISITORS`` of them make one burst at ``CONCURRENCY``; the sides alternate for ``ROUNDS``
rounds (the order rotating) so that a round's sides share the machine's load. Reported per
side: guests/s (accepted creating requests / the burst's wall time), p50 and p99 latency,
errors, and the rows left against the visitors accepted; and per round the ratio anonauth /
django-guest-user (the same view body), judged by its spread
(:func:`tests.benchmarks.common.judge`): FAIL (exit 1) only if the rounds' interquartile
range lies below ``TARGET``, or a request failed. Skipped without ``REDIS_URL``
(``make bench`` runs every benchmark; ``make bench-load`` sets it).

Where ``/proc`` exists (Linux), each side also gets the CPU time its requests cost,
summed from ``/proc/<pid>/stat`` over a burst and divided by its visitors: the side's
gunicorn workers, every PostgreSQL process, Redis, and the load generator itself.
While the 2 cores are the limit, guests/s follows that total.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from tests.benchmarks.common import judge, ratios, report
from tests.benchmarks.common import spread as common_spread

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
VISITORS = int(os.environ.get("BURST_VISITORS", "1000"))
CONCURRENCY = int(os.environ.get("BURST_CONCURRENCY", "12"))
ROUNDS = int(os.environ.get("BURST_ROUNDS", "9"))
WORKERS = int(os.environ.get("BURST_WORKERS", "3"))
WARMUP = 30
REQUEST_TIMEOUT = 15.0  # seconds, per request
BURST_TIMEOUT = 180.0  # seconds, per burst: the visitors not started by then are errors
TARGET = 2.0  # anonauth's guests/s over django-guest-user's


@dataclass
class Side:
    name: str
    kind: str  # "shop", "anonauth", "guest_user" or "plain"
    settings: str
    path: str = "/burst/add/"
    database_url: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    rates: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: int = 0
    created: int = 0
    samples: list[str] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)  # ms per visitor, by process

    def cpu_totals(self) -> list[float]:
        """Each round's CPU milliseconds per visitor, all processes together."""
        return [sum(by_group.values()) for by_group in self.cpu]

    def accepts(self, status: int, headers: dict[str, list[str]], body: bytes) -> bool:
        """Whether the answer is a signed-in guest's (or, with no guest app, a session's)."""
        sets_session = "sessionid=" in " ".join(headers.get("set-cookie", []))
        if self.kind == "shop":  # refused visitors are sent back to the product list
            return status == 302 and headers.get("location") == ["/cart/"] and sets_session
        if self.kind == "plain":
            return status == 200 and sets_session
        return status == 200 and body.startswith(b"guest ") and sets_session


def sides() -> list[Side]:
    found = [Side("anonauth", "anonauth", "tests.benchmarks.burst_settings")]
    if importlib.util.find_spec("guest_user") is not None:
        found.append(
            Side("django-guest-user", "guest_user", "tests.benchmarks.burst_guestuser_settings")
        )
    found += [
        Side("no guest app", "plain", "tests.benchmarks.burst_plain_settings"),
        Side("anonauth shop", "shop", "tests.benchmarks.burst_settings"),
    ]
    return found


# The databases and the servers


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin(base: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base, urlsplit(base).path.lstrip("/")), autocommit=True) as c:
        for sql in statements:
            c.execute(sql)  # type: ignore[arg-type]


def child_env(side: Side) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": side.settings,
        "DATABASE_URL": side.database_url,
    }


def prepare(side: Side, base: str) -> None:
    """A fresh database for ``side``, migrated; the anonauth shop gets a product to add."""
    suffix = side.kind
    name = f"{urlsplit(base).path.lstrip('/')}_burst_{suffix}"
    admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    side.database_url = database_url(base, name)
    output = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_burst", "setup"],
        env=child_env(side),
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    product = json.loads(output.strip().splitlines()[-1])["product"]
    if side.kind == "shop":
        side.path = f"/cart/add/{product}/"


def setup_child() -> None:
    """In the side's process: migrate, create one product, print its pk."""
    import django
    from django.core.management import call_command

    django.setup()
    from example_project.shop.models import Product

    call_command("migrate", verbosity=0, interactive=False)
    product = Product.objects.create(name="Burst", price="1.00")
    print(json.dumps({"product": product.pk}), flush=True)


def count_child() -> None:
    """In the side's process: print how many users and sessions the bursts left."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    users, sessions = get_user_model().objects.count(), Session.objects.count()
    print(json.dumps({"users": users, "sessions": sessions}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(side: Side) -> None:
    side.port = free_port()
    side.process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "example_project.wsgi:application",
            "--workers", str(WORKERS), "--worker-class", "sync",
            "--bind", f"127.0.0.1:{side.port}", "--timeout", "60", "--log-level", "warning",
        ],
        env=child_env(side),
    )  # fmt: skip


def wait_ready(side: Side, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert side.process is not None
        if side.process.poll() is not None:
            raise SystemExit(f"gunicorn for {side.name} exited: {side.process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", side.port, timeout=2)
            connection.request("GET", "/robots.txt", headers={"User-Agent": BROWSER})
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn for {side.name} did not answer within {timeout:.0f} s")


def stop(side: Side) -> None:
    if side.process is not None and side.process.poll() is None:
        side.process.terminate()
        try:
            side.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            side.process.kill()
            side.process.wait(timeout=10)


# The visitors


class Addresses:
    """A different client address for every visitor of the run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next = secrets.randbelow(1 << 20) << 2

    def take(self) -> str:
        with self.lock:
            self.next += 1
            n = self.next % (1 << 24)
        return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


ADDRESSES = Addresses()


def visit(side: Side, deadline: float) -> tuple[bool, float, str]:
    """One new visitor's creating request: (accepted, seconds, what went wrong).

    A fresh connection writing the request's bytes and reading the answer to its end
    (``Connection: close``), parsed no further than the checks need: the load generator
    shares the 2 cores with the servers, and ``http.client`` cost about a tenth of a
    request's CPU time on the fastest side."""
    if time.monotonic() > deadline:
        return False, 0.0, "burst timeout"
    csrf = secrets.token_hex(16)  # 32 characters: a CSRF secret, sent as cookie and header
    request = (
        f"POST {side.path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{side.port}\r\n"
        f"User-Agent: {BROWSER}\r\n"
        "Accept: text/html,application/xhtml+xml\r\n"
        f"Cookie: csrftoken={csrf}\r\n"
        f"X-CSRFToken: {csrf}\r\n"
        f"X-Forwarded-For: {ADDRESSES.take()}\r\n"
        "Content-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    start_time = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", side.port), timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as error:
        return False, time.perf_counter() - start_time, f"{type(error).__name__}: {error}"
    elapsed = time.perf_counter() - start_time
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        return False, elapsed, f"no HTTP answer: {head[:80]!r}"
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if side.accepts(status, headers, body):
        return True, elapsed, ""
    return False, elapsed, f"{status} {headers.get('location')} {body[:80]!r}"


# CPU time by process, from /proc (Linux)

PROC = "/proc"
CPU_GROUPS = ("gunicorn", "postgres", "redis", "client")


def proc_stat(pid: str) -> tuple[int, str, float] | None:
    """(parent pid, command name, user + system CPU seconds) of ``pid``, from one read of
    ``/proc/<pid>/stat``; ``None`` once it is gone."""
    try:
        with open(f"{PROC}/{pid}/stat") as stat:
            head, _, rest = stat.read().rpartition(")")
    except OSError:
        return None
    fields = rest.split()
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return int(fields[1]), head.partition("(")[2], seconds


def cpu_snapshot(side: Side) -> dict[tuple[str, int], float]:
    """CPU seconds so far, by (group, pid), of ``side``'s gunicorn workers, the PostgreSQL
    and Redis processes and this one (the load generator, all its threads)."""
    if side.process is None or not os.path.isdir(PROC):
        return {}
    found = {}
    for entry in os.listdir(PROC):
        stat = proc_stat(entry) if entry.isdigit() else None
        if stat is None:
            continue
        parent, name, seconds = stat
        pid = int(entry)
        if pid == os.getpid():
            group = "client"
        elif parent == side.process.pid:
            group = "gunicorn"
        elif name.startswith(("postgres", "redis-server")):
            group = name.partition("-")[0]
        else:
            continue
        found[group, pid] = seconds
    return found


def cpu_per_visitor(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float], visitors: int
) -> dict[str, float]:
    """Milliseconds of CPU per visitor by group, over the processes alive at both ends (a
    backend that exited meanwhile takes its time with it; one that started is not seen)."""
    totals = dict.fromkeys(CPU_GROUPS, 0.0)
    for key, seconds in after.items():
        if key in before:
            totals[key[0]] += (seconds - before[key]) * 1e3 / visitors
    return totals


def burst(side: Side, visitors: int, *, record: bool) -> None:
    deadline = time.monotonic() + BURST_TIMEOUT
    before = cpu_snapshot(side) if record else {}
    start_time = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda _: visit(side, deadline), range(visitors)))
    wall = time.perf_counter() - start_time
    if before:
        side.cpu.append(cpu_per_visitor(before, cpu_snapshot(side), visitors))
    accepted = [seconds for ok, seconds, _ in results if ok]
    side.created += len(accepted)
    failures = [why for ok, _, why in results if not ok]
    side.samples += failures[: 3 - len(side.samples)] if len(side.samples) < 3 else []
    if not record:
        return
    side.errors += len(failures)
    side.rates.append(len(accepted) / wall)
    latencies = sorted(accepted) or [0.0]
    side.p50.append(statistics.median(latencies))
    side.p99.append(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))])


# The report


def spread(values: list[float], fmt: str) -> str:
    low, middle, high = (fmt.format(f(values)) for f in (min, statistics.median, max))
    return f"{middle} ({low}-{high})"


def print_report(all_sides: list[Side], verified: dict[str, str]) -> bool:
    print(
        f"  {VISITORS} new visitors per burst, concurrency {CONCURRENCY}, gunicorn {WORKERS} sync "
        f"workers, {ROUNDS} rounds; median (min-max) over the rounds",
        flush=True,
    )
    for side in all_sides:
        print(
            f"  {side.name:<18} guests/s {spread(side.rates, '{:.1f}')}"
            f"   p50 {spread([s * 1e3 for s in side.p50], '{:.1f}')} ms"
            f"   p99 {spread([s * 1e3 for s in side.p99], '{:.1f}')} ms"
            f"   errors {side.errors}   {verified[side.name]}",
            flush=True,
        )
        for sample in side.samples:
            print(f"      e.g. {sample}")
    kinds = {side.kind: side for side in all_sides}
    if all(side.cpu for side in all_sides):
        # Each column is its own median: on a machine whose speed drifts between rounds
        # the parts need not add up to the total.
        print("  CPU ms per visitor, each column's median over the rounds (from /proc):")
        for side in all_sides:
            parts = {name: statistics.median(c[name] for c in side.cpu) for name in CPU_GROUPS}
            detail = "  ".join(f"{name} {value:.2f}" for name, value in parts.items())
            total = statistics.median(side.cpu_totals())
            print(f"  {side.name:<18} total {total:.2f}   {detail}", flush=True)
        if "guest_user" in kinds:
            per_round = ratios(kinds["guest_user"].cpu_totals(), kinds["anonauth"].cpu_totals())
            report("CPU per visitor, django-guest-user / anonauth", common_spread(per_round))
    ok = all(side.errors == 0 for side in all_sides)

    def ratio(label: str, numerator: str, denominator: str, target: float | None) -> bool:
        values = ratios(kinds[numerator].rates, kinds[denominator].rates)
        if target is None:
            report(f"ratio {label}", common_spread(values, "{:.2f}"))
            return True
        return judge(f"ratio {label}", values, at_least=target, fmt="{:.2f}")

    passed = True
    if "guest_user" in kinds:
        passed = ratio("anonauth / django-guest-user", "anonauth", "guest_user", TARGET)
        ratio("anonauth shop / django-guest-user", "shop", "guest_user", None)
    else:
        print("  django-guest-user is not installed (pip install -e '.[bench]'): no ratio")
    ratio("anonauth / no guest app", "anonauth", "plain", None)
    ratio("anonauth shop / anonauth (the shop's view)", "shop", "anonauth", None)
    return ok and passed


def verify(side: Side) -> str:
    """The rows the bursts left against the visitors that were accepted."""
    output = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_burst", "count"],
        env=child_env(side),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    counts = json.loads(output.strip().splitlines()[-1])
    what = "sessions" if side.kind == "plain" else "users"
    rows = counts[what]
    verdict = "ok" if rows == side.created else "MISMATCH"
    return f"({rows} {what} for {side.created} accepted: {verdict})"


def main() -> int:
    if len(sys.argv) > 1:
        {"setup": setup_child, "count": count_child}[sys.argv[1]]()
        return 0
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("  skipped: needs DATABASE_URL (PostgreSQL) and REDIS_URL (see make bench-load)")
        return 0
    all_sides = sides()
    if len(all_sides) < 3:
        print("  django-guest-user is not installed: running anonauth and no guest app only")
    try:
        for side in all_sides:
            prepare(side, base)
            start(side)
        for side in all_sides:
            wait_ready(side)
            burst(side, WARMUP, record=False)
        for number in range(ROUNDS):
            shift = number % len(all_sides)
            for side in all_sides[shift:] + all_sides[:shift]:
                burst(side, VISITORS, record=True)
        verified = {side.name: verify(side) for side in all_sides}
    finally:
        for side in all_sides:
            stop(side)
        for side in all_sides:
            if side.database_url:
                name = urlsplit(side.database_url).path.lstrip("/")
                admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0 if print_report(all_sides, verified) else 1


if __name__ == "__main__":
    sys.exit(main())
