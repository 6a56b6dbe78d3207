"""With Redis as the cache, the guest rate limit is shared by separate web processes.

Two gunicorn processes serve the same project (a SQLite file, Redis as the default
cache, ``ANONAUTH_RATE_LIMIT = "3/h"``); sign-ins from one address alternate between
them, and the fourth is refused whichever process answers it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "tests.settings_processes"
START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL"),
    pytest.mark.auth_user_only,  # about the cache, not the user model: run it once
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PYTHONPATH=str(ROOT),
        ANONAUTH_PROCESS_DB=str(tmp_path / "db.sqlite3"),
        RATELIMIT_CACHE_PREFIX=f"anonauth-test-{uuid.uuid4().hex}:",  # no leftover counts
    )
    return env


def wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn on port {port} exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn on port {port} did not listen within {START_TIMEOUT} s")


@contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[int]:
    """A gunicorn process (one worker) on a free loopback port; stopped on exit."""
    port = free_port()
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--chdir",
                str(ROOT),
                "tests.wsgi:application",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def sign_in(port: int) -> tuple[int, dict[str, Any], str | None]:
    """POST the sign-in endpoint like an app client: no cookies, so no CSRF check."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/anonymous/sign-in/", method="POST", data=b""
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status, json.load(response), response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error), error.headers.get("Retry-After")


def test_the_rate_limit_counts_across_processes(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    with ExitStack() as stack:
        ports = [stack.enter_context(gunicorn(env, tmp_path / f"gunicorn-{i}.log")) for i in (1, 2)]
        answers = [sign_in(ports[i % 2]) for i in range(6)]

    for status, body, _ in answers[:3]:
        assert status == 201, body
        assert body["user"]["is_guest"] is True
        assert body["session_token"]
    assert len({body["user"]["id"] for _, body, _ in answers[:3]}) == 3
    for status, body, retry_after in answers[3:]:
        assert (status, body.get("code")) == (429, "rate_limited"), body
        assert retry_after is not None
        assert 1 <= int(retry_after) <= 3600
