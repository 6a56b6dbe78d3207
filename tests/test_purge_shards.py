"""The purge spread over shards: splitting the stale guests into primary-key ranges,
purging one range, and the Celery chord that purges them all and sums the results."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.test import override_settings

from anonauth import signals, tasks
from anonauth.models import Guest
from anonauth.purge import Shard, purge_guests, split_stale_guests
from anonauth.tasks import (
    LOCK_KEY,
    PurgeLock,
    purge_anonymous,
    purge_shard,
    purge_sum,
    sum_summaries,
)
from anonauth.test import connected
from tests.purge_helpers import exists, make_guest
from tests.threads import run_together

attempts: list[dict[str, Any]] = []


def in_shard(shard: Shard) -> set[Any]:
    return set(shard.narrow(Guest.objects.all()).values_list("user_id", flat=True))


def assert_partition(shards: list[Shard], stale: list[Any]) -> None:
    """Every stale guest lies in exactly one shard."""
    ids = {user.pk for user in stale}
    members = [in_shard(shard) & ids for shard in shards]
    assert sorted(pk for found in members for pk in found) == sorted(ids)


def fail_on_marked(users: QuerySet[Any]) -> list[Any]:
    """A spare hook that breaks the batch holding a user named ``...boom``."""
    if users.filter(**{f"{get_user_model().USERNAME_FIELD}__endswith": "boom"}).exists():
        raise RuntimeError("spare hook failed")
    return []


def spare_and_run_again(users: QuerySet[Any]) -> list[Any]:
    attempts.append(purge_anonymous(shards=2))
    return []


@contextmanager
def purged_batches() -> Iterator[list[list[Any]]]:
    batches: list[list[Any]] = []

    def receiver(user_ids: list[Any], **kwargs: Any) -> None:
        batches.append(list(user_ids))

    with connected(signals.guests_purged, receiver):
        yield batches


@pytest.mark.django_db
class TestSplit:
    def test_an_empty_table_is_one_open_shard(self) -> None:
        assert split_stale_guests(4) == [Shard(None, None)]

    def test_one_guest_is_one_shard(self) -> None:
        guest = make_guest()
        shards = split_stale_guests(4)
        assert shards == [Shard(None, None)]
        assert in_shard(shards[0]) == {guest.pk}

    def test_ranges_cover_every_stale_guest_once(self) -> None:
        stale = [make_guest() for _ in range(10)]
        make_guest(days_ago=1)
        shards = split_stale_guests(3)
        assert len(shards) == 3
        assert (shards[0].after, shards[-1].upto) == (None, None)
        assert all(a.upto == b.after for a, b in itertools.pairwise(shards))
        assert_partition(shards, stale)
        assert [len(in_shard(s) & {u.pk for u in stale}) for s in shards] == [3, 3, 4]

    def test_gaps_in_the_ids(self) -> None:
        guests = [make_guest() for _ in range(12)]
        gone = guests[1:8]
        get_user_model().objects.filter(pk__in=[u.pk for u in gone]).delete()
        stale = [u for u in guests if u not in gone]
        shards = split_stale_guests(2)
        assert_partition(shards, stale)
        assert [len(in_shard(s)) for s in shards] == [2, 3]

    def test_a_shard_holds_at_least_min_size_guests(self) -> None:
        stale = [make_guest() for _ in range(5)]
        assert len(split_stale_guests(4, min_size=2)) == 2
        assert len(split_stale_guests(4, min_size=10)) == 1
        assert_partition(split_stale_guests(10), stale)

    @pytest.mark.parametrize(("shards", "min_size"), [(0, 1), (2, 0)])
    def test_bad_arguments(self, shards: int, min_size: int) -> None:
        with pytest.raises(ValueError, match="must be positive"):
            split_stale_guests(shards, min_size=min_size)


@pytest.mark.django_db
class TestPurgeOneShard:
    def test_only_the_shards_guests_go(self, django_capture_on_commit_callbacks: Any) -> None:
        stale = [make_guest(items=1, session=True) for _ in range(6)]
        shard = Shard(stale[1].pk, stale[3].pk)
        with purged_batches() as batches, django_capture_on_commit_callbacks(execute=True):
            result = purge_guests(shard=shard, batch_size=1)
        assert (result.purged, result.sessions, result.batches) == (2, 2, 2)
        assert batches == [[stale[2].pk], [stale[3].pk]]
        assert [exists(u) for u in stale] == [True, True, False, False, True, True]

    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge.spare_even")
    def test_the_spare_hook_holds_per_shard(self) -> None:
        stale = [make_guest() for _ in range(4)]
        result = purge_guests(shard=Shard(None, stale[1].pk))
        assert result.purged + result.spared == 2
        assert result.spared == 1

    def test_a_fresh_guest_in_the_shard_survives(self) -> None:
        guests = [make_guest(), make_guest(days_ago=1), make_guest()]
        result = purge_guests(shard=Shard(None, guests[2].pk))
        assert result.purged == 2
        assert [exists(u) for u in guests] == [False, True, False]


@pytest.mark.django_db
class TestShardedTask:
    def test_the_shards_results_are_summed(self, django_capture_on_commit_callbacks: Any) -> None:
        stale = [make_guest(items=2, session=True) for _ in range(7)]
        fresh = make_guest(days_ago=1)
        with purged_batches() as batches, django_capture_on_commit_callbacks(execute=True):
            summary = purge_anonymous(shards=3, batch_size=2)
        assert (summary["status"], summary["shards"], summary["failed"]) == ("done", 3, [])
        assert (summary["purged"], summary["examined"], summary["sessions"]) == (7, 7, 7)
        assert summary["deleted"]["testapp.BasketItem"] == 14
        assert summary["batches"] == len(batches) == 4  # 2 + 2 + 3 guests
        assert len(summary["shard_seconds"]) == 3
        assert sorted(pk for batch in batches for pk in batch) == [u.pk for u in stale]
        assert exists(fresh)
        assert cache.get(LOCK_KEY) is None

    def test_through_apply_the_task_replaces_itself_with_the_chord(self) -> None:
        for _ in range(4):
            make_guest()
        summary = purge_anonymous.apply(kwargs={"shards": 2, "batch_size": 1}).get()
        assert (summary["status"], summary["shards"], summary["purged"]) == ("done", 2, 4)
        assert Guest.objects.count() == 0
        assert cache.get(LOCK_KEY) is None

    @override_settings(ANONAUTH_PURGE_SHARDS=2, ANONAUTH_PURGE_BATCH_SIZE=1)
    def test_the_setting_spreads_the_run(self) -> None:
        for _ in range(3):
            make_guest()
        assert purge_anonymous()["shards"] == 2

    def test_a_dry_run_sums_what_would_go(self) -> None:
        stale = [make_guest() for _ in range(4)]
        summary = purge_anonymous(shards=2, batch_size=1, dry_run=True)
        assert (summary["would_purge"], summary["purged"], summary["dry_run"]) == (4, 0, True)
        assert all(exists(u) for u in stale)

    def test_a_limit_keeps_the_run_in_one_task(self) -> None:
        for _ in range(4):
            make_guest()
        summary = purge_anonymous(shards=2, batch_size=1, limit=3)
        assert "shards" not in summary
        assert summary["purged"] == 3

    def test_too_few_guests_for_two_shards(self) -> None:
        make_guest()
        summary = purge_anonymous(shards=4)
        assert ("shards" not in summary, summary["purged"]) == (True, 1)

    def test_a_bad_batch_size_is_refused_before_the_split(self) -> None:
        for _ in range(2):
            make_guest()
        with pytest.raises(ValueError, match="batch_size must be positive, not 0"):
            purge_anonymous(shards=2, batch_size=0)
        assert cache.get(LOCK_KEY) is None

    def test_bad_shards(self) -> None:
        with pytest.raises(ValueError, match="shards must be positive, not 0"):
            purge_anonymous(shards=0)
        assert cache.get(LOCK_KEY) is None

    @override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge_shards.fail_on_marked")
    def test_a_failed_shard_is_reported_and_the_others_count(self) -> None:
        stale = [make_guest() for _ in range(6)]
        User = get_user_model()
        marked = stale[4]
        User.objects.filter(pk=marked.pk).update(
            **{User.USERNAME_FIELD: f"{getattr(marked, User.USERNAME_FIELD)}boom"}
        )
        summary = purge_anonymous(shards=3, batch_size=1)
        assert summary["status"] == "partial"
        [failed] = summary["failed"]
        assert failed["error"] == "RuntimeError('spare hook failed')"
        assert failed["shard"] == [stale[3].pk, None]
        assert failed["purged"] == 0  # its first batch was the marked guest's
        assert summary["purged"] == 4  # the other two shards
        assert [exists(u) for u in stale] == [False, False, False, False, True, True]
        assert cache.get(LOCK_KEY) is None

    def test_a_run_during_a_sharded_run_finds_the_lock(self) -> None:
        for _ in range(4):
            make_guest()
        attempts.clear()
        with override_settings(ANONAUTH_PURGE_SPARE="tests.test_purge_shards.spare_and_run_again"):
            summary = purge_anonymous(shards=2, batch_size=1)
        assert attempts == [{"status": "locked"}] * 4  # once per batch, in every shard
        assert summary["purged"] == 4
        assert cache.get(LOCK_KEY) is None

    def test_a_shard_renews_the_runs_lock_and_the_sum_frees_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for _ in range(2):
            make_guest()
        run = PurgeLock()
        assert run.acquire()
        renewed: list[str] = []
        original = PurgeLock.renew

        def renew(self: PurgeLock, result: Any = None) -> None:
            renewed.append(self.token)
            original(self, result)

        monkeypatch.setattr(PurgeLock, "renew", renew)
        done = purge_shard(None, None, 30 * 86400, batch_size=1, lock_token=run.token)
        assert done["purged"] == 2
        assert renewed == [run.token, run.token]
        assert cache.get(LOCK_KEY) == run.token
        purge_sum([done], 0.0, run.token)
        assert cache.get(LOCK_KEY) is None


def test_range_ends_travel_as_json() -> None:
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert [tasks._key(k) for k in (None, 7, key)] == [None, 7, str(key)]


def test_a_shard_lost_with_its_worker_is_redelivered() -> None:
    assert (purge_shard.acks_late, purge_shard.reject_on_worker_lost) == (True, True)


def test_summing_keeps_blocked_counts_and_caps_ids() -> None:
    def shard(blocked: int, label: str) -> dict[str, Any]:
        ids = list(range(blocked))
        return {
            "status": "done",
            "dry_run": False,
            **dict.fromkeys(("examined", "purged", "spared", "sessions", "batches"), 1),
            "blocked": blocked,
            "blocked_by": {label: blocked},
            "blocked_ids": ids,
            "deleted": {"auth.User": 1},
            "seconds": 1.5,
        }

    total = sum_summaries([shard(80, "a.B.c"), shard(70, "a.B.c"), shard(1, "d.E.f")], seconds=2)
    assert (total["blocked"], total["blocked_by"]) == (151, {"a.B.c": 150, "d.E.f": 1})
    assert len(total["blocked_ids"]) == 100
    assert (total["purged"], total["deleted"], total["seconds"]) == (3, {"auth.User": 3}, 2)
    assert total["shard_seconds"] == [1.5, 1.5, 1.5]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
class TestConcurrentShards:
    def test_shards_purged_at_once_share_out_every_guest(self) -> None:
        stale = [make_guest(items=1, session=True) for _ in range(40)]
        fresh = make_guest(days_ago=1)
        shards = split_stale_guests(4)
        with purged_batches() as batches:
            results = run_together(
                *(lambda s=s: purge_guests(shard=s, batch_size=3) for s in shards)
            )
        assert [r.purged for r in results] == [10, 10, 10, 10]
        assert sum(r.sessions for r in results) == 40
        assert sorted(pk for batch in batches for pk in batch) == [u.pk for u in stale]
        assert Guest.objects.get().pk == fresh.pk

    def test_overlapping_runs_on_one_shard_skip_each_others_rows(self) -> None:
        stale = [make_guest() for _ in range(30)]
        shard = Shard(None, stale[-1].pk)
        results = run_together(*(lambda: purge_guests(shard=shard, batch_size=2) for _ in range(3)))
        assert sum(r.purged for r in results) == 30
        assert Guest.objects.count() == 0
