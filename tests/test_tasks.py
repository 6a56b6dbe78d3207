from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.test import override_settings

from anonauth import tasks
from anonauth.models import Guest
from anonauth.tasks import LOCK_KEY, PurgeLock, purge_anonymous
from tests.purge_helpers import exists, make_guest

ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT = 20

attempts: list[dict[str, Any]] = []


def spare_and_run_again(users: QuerySet[Any]) -> list[Any]:
    """A spare hook that starts a second purge while the first one runs."""
    attempts.append(purge_anonymous())
    return []


@pytest.mark.django_db
class TestTask:
    def test_runs_the_purge_and_returns_the_summary(self) -> None:
        stale = [make_guest(items=1) for _ in range(3)]
        summary = purge_anonymous.apply(kwargs={"batch_size": 2}).get()
        assert summary["status"] == "done"
        assert (summary["purged"], summary["batches"]) == (3, 2)
        assert summary["deleted"]["testapp.Basket"] == 3
        assert not any(exists(user) for user in stale)
        assert cache.get(LOCK_KEY) is None

    def test_options(self) -> None:
        stale = [make_guest(days_ago=3) for _ in range(3)]
        summary = purge_anonymous(older_than=2 * 86400, limit=2, dry_run=False)
        assert summary["purged"] == 2
        assert [exists(user) for user in stale] == [False, False, True]
        assert exists(stale[2])

    def test_a_dry_run_reports_what_would_be_purged(self) -> None:
        stale = make_guest()
        summary = purge_anonymous(dry_run=True)
        assert (summary["status"], summary["dry_run"]) == ("done", True)
        assert (summary["would_purge"], summary["purged"]) == (1, 0)
        assert exists(stale)
        assert "would_purge" not in purge_anonymous()

    @pytest.mark.parametrize("older_than", [1800, 3600.0])
    def test_a_cutoff_that_would_purge_active_guests_is_refused(self, older_than: float) -> None:
        active = make_guest(days_ago=45 / (24 * 60))  # browsing; last_seen is written hourly
        message = (
            f"older_than={older_than!r} is not longer than ANONAUTH_TOUCH_INTERVAL (3600 "
            "seconds): guests are seen only once per that interval, so guests active right now "
            "would be purged."
        )
        with pytest.raises(ValueError, match=r"^older_than=") as raised:
            purge_anonymous.apply(kwargs={"older_than": older_than}).get()
        assert str(raised.value) == message
        assert exists(active)
        assert cache.get(LOCK_KEY) is None

    @override_settings(ANONAUTH_MAX_AGE=timedelta(minutes=30))
    def test_a_default_cutoff_that_would_purge_active_guests_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"^ANONAUTH_MAX_AGE is not longer than"):
            purge_anonymous()

    @override_settings(ANONAUTH_TOUCH_INTERVAL=600)
    def test_a_cutoff_longer_than_the_touch_interval(self) -> None:
        stale = make_guest(days_ago=45 / (24 * 60))
        assert purge_anonymous(older_than=1800)["purged"] == 1
        assert not exists(stale)

    def test_two_runs_never_overlap(self) -> None:
        stale = make_guest()
        attempts.clear()
        with override_settings(ANONAUTH_PURGE_SPARE="tests.test_tasks.spare_and_run_again"):
            summary = purge_anonymous()
        assert attempts == [{"status": "locked"}]
        assert summary["purged"] == 1
        assert not exists(stale)
        assert cache.get(LOCK_KEY) is None

    def test_a_held_lock_skips_the_run(self) -> None:
        stale = make_guest()
        holder = PurgeLock()
        assert holder.acquire()
        assert purge_anonymous() == {"status": "locked"}
        assert exists(stale)
        holder.release()
        assert purge_anonymous()["purged"] == 1

    def test_the_lock_is_freed_when_the_purge_fails(self) -> None:
        with pytest.raises(ValueError, match="batch_size"):
            purge_anonymous(batch_size=0)
        assert cache.get(LOCK_KEY) is None

    @override_settings(ANONAUTH_PURGE_LOCK_TIMEOUT=60)
    def test_only_the_holder_renews_or_frees_the_lock(self) -> None:
        holder, other = PurgeLock(), PurgeLock()
        assert holder.acquire()
        assert not other.acquire()
        other.renew()
        other.release()
        assert cache.get(LOCK_KEY) == holder.token
        holder.renew()
        holder.release()
        assert cache.get(LOCK_KEY) is None

    def test_the_lock_is_renewed_after_each_batch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for _ in range(3):
            make_guest()
        renewed: list[int] = []
        original = PurgeLock.renew

        def renew(self: PurgeLock, result: Any = None) -> None:
            renewed.append(result.batches)
            original(self, result)

        monkeypatch.setattr(tasks.PurgeLock, "renew", renew)
        purge_anonymous(batch_size=1)
        assert renewed == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("anonauth.purge_anonymous", purge_anonymous),
        ("anonauth.purge_shard", tasks.purge_shard),
        ("anonauth.purge_sum", tasks.purge_sum),
    ],
)
def test_the_tasks_are_registered_under_their_names(name: str, task: Any) -> None:
    from tests.celery_app import app

    def function(run: Any) -> Any:
        return getattr(run, "__func__", run)  # a bound task's run is a bound method

    assert function(app.tasks[name].run) is function(task.run)


def _worker_database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A real Celery worker on Redis, consuming a queue of its own, on the test database."""
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("set CELERY_BROKER_URL (a Redis broker) to test a real worker")
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share (PostgreSQL)")
    queue = f"anonauth-tests-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
        "DATABASE_URL": _worker_database_url(),
        "ANONAUTH_TEST_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker"]
    options = ["--pool=solo", "-c1", "-Q", queue, "--without-gossip", "--without-mingle"]
    worker = subprocess.Popen(
        [*command, *options, "--without-heartbeat", "--loglevel=WARNING"], cwd=ROOT, env=env
    )
    try:
        yield queue
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            worker.kill()
            worker.wait()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_purges(worker_queue: str) -> None:
    from tests.celery_app import app

    stale = [make_guest(items=2) for _ in range(3)]
    fresh = make_guest(days_ago=1)
    result = app.send_task("anonauth.purge_anonymous", kwargs={"batch_size": 2}, queue=worker_queue)
    summary = result.get(timeout=WORKER_TIMEOUT)
    assert summary["status"] == "done"
    assert (summary["purged"], summary["batches"]) == (3, 2)
    assert summary["deleted"]["testapp.BasketItem"] == 6
    assert not any(exists(user) for user in stale)
    assert exists(fresh)
    assert Guest.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_purges_in_shards_and_sums_them(worker_queue: str) -> None:
    from tests.celery_app import app

    stale = [make_guest(items=1) for _ in range(9)]
    fresh = make_guest(days_ago=1)
    kwargs = {"batch_size": 2, "shards": 3}
    result = app.send_task("anonauth.purge_anonymous", kwargs=kwargs, queue=worker_queue)
    summary = result.get(timeout=WORKER_TIMEOUT)
    assert (summary["status"], summary["shards"], summary["failed"]) == ("done", 3, [])
    assert (summary["purged"], summary["batches"]) == (9, 6)  # 3 guests a shard, 2 batches
    assert summary["deleted"]["testapp.BasketItem"] == 9
    assert not any(exists(user) for user in stale)
    assert exists(fresh)
