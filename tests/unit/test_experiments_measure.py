"""A run's measures from task and subtask records (the rows Postgres returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reynolds.experiments.measure import measures

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sub(state: str, ready: float, start: float | None, end: float | None, agent: str, attempts: int = 1) -> dict:
    return {
        "state": state,
        "attempts": attempts,
        "ready_at": at(ready),
        "started_at": at(start) if start is not None else None,
        "finished_at": at(end) if end is not None else None,
        "agent": agent,
    }


def test_measures_of_a_run() -> None:
    task = {"created_at": at(0), "finished_at": at(4), "state": "failed"}
    subtasks = [
        sub("succeeded", 0.0, 0.5, 2.5, "w1"),  # waits 0.5
        sub("succeeded", 0.0, 1.5, 3.5, "w1", attempts=3),  # overlaps the first on w1; waits 1.5
        sub("failed", 0.0, 1.0, 2.0, "w2"),  # waits 1.0
        sub("skipped", 0.0, None, 4.0, "w2"),  # never started: no wait, no busy time
    ]
    m = measures(task, subtasks)
    assert m["makespan_s"] == 4.0
    assert m["success_rate"] == 0.5
    assert m["retries"] == 2.0
    assert m["overhead_s"] == pytest.approx(1.0)
    assert m["parallelism"] == pytest.approx((2 + 2 + 1) / 4)
    # w1 busy 0.5..3.5 (overlap counted once) = 3 of 4 s; w2 busy 1 of 4 s
    assert m["agents"] == {"w1": 0.75, "w2": 0.25}
    assert m["utilisation"] == pytest.approx(0.5)


def test_a_run_with_nothing_started() -> None:
    m = measures({"created_at": at(0), "finished_at": at(1), "state": "cancelled"}, [sub("cancelled", 0, None, 1, "w")])
    assert m["parallelism"] == 0 and m["utilisation"] == 0 and m["overhead_s"] == 0 and m["success_rate"] == 0
