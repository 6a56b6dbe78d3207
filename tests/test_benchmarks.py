"""The judgement of the benchmarks (``tests/benchmarks``), which ``make test`` does not run:
their verdicts, alternating rounds and CPU accounting must not cry wolf, nor pass a miss."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.benchmarks import bench_burst, common
from tests.benchmarks.common import FAIL, INCONCLUSIVE, PASS


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.90, 0.95, 1.00, 1.02, 1.05], PASS),  # the whole IQR (0.95-1.02) <= 1.1
        ([1.00, 1.05, 1.10, 1.20, 1.50], INCONCLUSIVE),  # 1.05-1.20 straddles 1.1
        ([1.00, 1.15, 1.20, 1.25, 1.30], FAIL),  # 1.15-1.25 lies above 1.1
        ([1.153], FAIL),  # one round is its own range
        ([1.10, 1.10, 1.10], PASS),  # on the target meets it
    ],
)
def test_verdict_at_most(values: list[float], expected: str) -> None:
    assert common.verdict(values, at_most=1.1) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2.02, 2.04, 2.10, 2.21, 2.38], PASS),
        ([1.89, 1.99, 2.06, 2.16, 2.37], INCONCLUSIVE),  # a run of the burst benchmark
        ([1.50, 1.60, 1.65, 1.70, 2.60], FAIL),  # an outlier above does not rescue it
        ([2.0, 2.0], PASS),
    ],
)
def test_verdict_at_least(values: list[float], expected: str) -> None:
    assert common.verdict(values, at_least=2.0) == expected


def test_verdict_needs_a_target() -> None:
    with pytest.raises(ValueError, match="at_most or at_least"):
        common.verdict([1.0])


def test_quartiles_are_the_inclusive_ones() -> None:
    assert common.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    assert common.quartiles([7.0]) == (7.0, 7.0, 7.0)


def test_judge_returns_false_only_for_a_fail(capsys: pytest.CaptureFixture[str]) -> None:
    assert common.judge("straddles", [1.0, 1.05, 1.1, 1.2, 1.5], at_most=1.1)
    assert not common.judge("above", [1.2, 1.3, 1.4], at_most=1.1)
    out = capsys.readouterr().out
    assert f"(target <= 1.1) {INCONCLUSIVE}" in out
    assert "1.300 [IQR 1.250-1.350] (min-max 1.200-1.400, n=3) (target <= 1.1) FAIL" in out


def test_alternate_rotates_the_order_of_the_sides() -> None:
    calls: list[str] = []

    def side(name: str, value: float) -> Callable[[], float]:
        def measure() -> float:
            calls.append(name)
            return value

        return measure

    values = common.alternate({"a": side("a", 1.0), "b": side("b", 2.0), "c": side("c", 3.0)}, 4)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert values == {"a": [1.0] * 4, "b": [2.0] * 4, "c": [3.0] * 4}


def test_ratios_pair_the_rounds() -> None:
    assert common.ratios([4.0, 9.0], [2.0, 3.0]) == [2.0, 3.0]
    # A missing round is an error, not a shorter list of ratios.
    with pytest.raises(ValueError, match="shorter"):
        common.ratios([1.0, 2.0], [1.0])


def test_cpu_per_visitor_counts_the_processes_alive_at_both_ends() -> None:
    before = {("gunicorn", 11): 1.0, ("gunicorn", 12): 2.0, ("postgres", 21): 0.5}
    after = {
        ("gunicorn", 11): 1.5,  # +0.5 s
        ("gunicorn", 12): 2.25,  # +0.25 s
        ("postgres", 22): 9.0,  # started during the burst: its total is not the burst's
        ("client", 31): 4.0,  # not in the first snapshot either
    }  # postgres 21 exited: its time is gone with it
    per_visitor = bench_burst.cpu_per_visitor(before, after, visitors=250)
    assert per_visitor == {"gunicorn": 3.0, "postgres": 0.0, "redis": 0.0, "client": 0.0}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc (Linux)")
def test_stat_reads_this_process() -> None:
    stat = bench_burst.proc_stat(str(os.getpid()))
    assert stat is not None
    parent, name, seconds = stat
    assert parent == os.getppid()
    with open(f"/proc/{os.getpid()}/comm") as comm:
        assert name == comm.read().strip()
    assert seconds > 0
    assert bench_burst.proc_stat("0") is None  # no such process


@pytest.mark.django_db
@pytest.mark.auth_user_only  # the benchmark's M2M rows name auth.User's through field
def test_bench_link_links_round_after_round() -> None:
    """Every round links a guest into an account of its own (the second used to raise
    ``IntegrityError`` on the first round's username): the link part of ``make bench``."""
    from tests.benchmarks import bench_link

    runs = [bench_link.link_once(20) for _ in range(2)]

    assert [queries for queries, _, _ in runs] == [runs[0][0]] * 2
    assert [sum(result.moved.values()) for _, _, result in runs] == [
        80,
        80,
    ]  # 20 each, less 10 votes and 10 memberships in conflict
