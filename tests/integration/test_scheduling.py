"""How a plan runs on real agents: parallel waves, data passed between subtasks, progress, deadlines."""

from __future__ import annotations

import itertools
import time

import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster
from tests.integration.conftest import run_plan, start_workbench, subtask, wait_task, when

SLEEP_S = 1.5


@pytest.mark.anyio
async def test_diamond_middle_nodes_run_concurrently(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster, replicas=2)
    plan = {
        "subtasks": [
            {"id": "a", "tool": "echo", "arguments": {"value": "start"}},
            {"id": "b", "tool": "sleep", "arguments": {"seconds": SLEEP_S}, "depends_on": ["a"]},
            {"id": "c", "tool": "sleep", "arguments": {"seconds": SLEEP_S}, "depends_on": ["a"]},
            {"id": "d", "tool": "echo", "arguments": {"value": "end"}, "depends_on": ["b", "c"]},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "succeeded", task
    b, c_, d = subtask(task, "b"), subtask(task, "c"), subtask(task, "d")
    # the two windows overlap: each started before the other finished
    assert when(b["started_at"]) < when(c_["finished_at"]), (b, c_)
    assert when(c_["started_at"]) < when(b["finished_at"]), (b, c_)
    assert when(d["started_at"]) >= max(when(b["finished_at"]), when(c_["finished_at"]))
    assert task["duration_s"] < 2 * SLEEP_S, task["duration_s"]


@pytest.mark.anyio
async def test_from_reference_passes_structured_output(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    source = {"items": [{"name": "first"}, {"name": "second"}], "meta": {"owner": {"team": "ops"}, "n": 3}}
    plan = {
        "subtasks": [
            {"id": "src", "tool": "echo", "arguments": {"value": source}},
            {"id": "index", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.items.1.name"}}},
            {"id": "last", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.items.-1"}}},
            {
                "id": "nested",
                "tool": "echo",
                "arguments": {"value": {"team": {"$from": "src", "path": "value.meta.owner.team"}, "fixed": 1}},
            },
            {"id": "whole", "tool": "echo", "arguments": {"value": {"$from": "src"}}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "succeeded", task
    assert subtask(task, "index")["result"]["value"] == "second"
    assert subtask(task, "last")["result"]["value"] == {"name": "second"}
    assert subtask(task, "nested")["result"]["value"] == {"team": "ops", "fixed": 1}
    # no path: the whole structured output of the dependency
    assert subtask(task, "whole")["result"]["value"] == {"value": source, "agent_id": "workbench-0"}
    assert subtask(task, "index")["depends_on"] == ["src"]  # reading an output implies waiting for it


@pytest.mark.anyio
async def test_missing_reference_path_fails_its_subtask_and_skips_only_its_dependents(
    reynolds_cluster: Cluster,
) -> None:
    start_workbench(reynolds_cluster)
    plan = {
        "subtasks": [
            {"id": "src", "tool": "echo", "arguments": {"value": {"items": [1]}}},
            {"id": "bad", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.items.5"}}},
            {"id": "after_bad", "tool": "echo", "arguments": {"value": 1}, "depends_on": ["bad"]},
            {"id": "after_after", "tool": "echo", "arguments": {"value": 2}, "depends_on": ["after_bad"]},
            {"id": "good", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.items.0"}}},
            {"id": "solo", "tool": "echo", "arguments": {"value": "independent"}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "failed", task
    bad = subtask(task, "bad")
    assert bad["state"] == "failed"
    assert "'src'" in bad["error"] and "value.items.5" in bad["error"], bad["error"]
    for sid in ("after_bad", "after_after"):
        skipped = subtask(task, sid)
        assert skipped["state"] == "skipped", skipped
        assert skipped["attempts"] == 0 and skipped["started_at"] is None
    assert subtask(task, "good")["state"] == "succeeded"
    assert subtask(task, "good")["result"]["value"] == 1
    assert subtask(task, "solo")["state"] == "succeeded"


@pytest.mark.anyio
async def test_progress_notifications_arrive(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    plan = {
        "subtasks": [
            {"id": f"s{i}", "tool": "sleep", "arguments": {"seconds": seconds}}
            for i, seconds in enumerate((0.3, 0.9, 1.5))
        ]
    }
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan, progress=on_progress)
    assert task["state"] == "succeeded", task
    assert len(seen) >= 2, seen
    values = [p for p, _, _ in seen]
    assert values == sorted(values), seen
    assert {t for _, t, _ in seen} == {3}, seen
    assert values[-1] == 3, f"the last progress report should say all 3 subtasks finished: {seen}"


@pytest.mark.anyio
async def test_task_timeout_fails_the_task(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    plan = {"subtasks": [{"id": "slow", "tool": "sleep", "arguments": {"seconds": 10}}]}
    started = time.monotonic()
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan, "wait": False, "timeout_s": 1})
        task = await wait_task(c, task["task_id"], timeout_s=8)
    elapsed = time.monotonic() - started
    assert task["state"] == "failed", task
    assert "timed out" in (task["error"] or ""), task
    slow = subtask(task, "slow")
    assert slow["state"] in ("failed", "cancelled"), slow
    assert slow["result"] is None
    assert elapsed < 5, f"a 1 s timeout took {elapsed:.1f} s to fail the task"


@pytest.mark.anyio
async def test_busy_pool_queues_work_instead_of_failing_it(reynolds_cluster: Cluster) -> None:
    # one replica taking one call at a time: the pool is healthy, only busy. Work waiting longer than
    # no_replica_wait_s for a free slot must wait on, not fail as if there were no replica at all.
    reynolds = reynolds_cluster.start_reynolds(REYNOLDS_NO_REPLICA_WAIT_S="2")
    reynolds_cluster.start_agent("workbench", reynolds=reynolds, AGENT_MAX_CONCURRENCY="1")
    reynolds_cluster.wait_registered(["workbench-0"])
    plan = {"subtasks": [{"id": f"s{i}", "tool": "sleep", "arguments": {"seconds": 1.5}} for i in range(3)]}
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "succeeded", [(s["id"], s["state"], s["error"]) for s in task["subtasks"]]
    windows = sorted((when(s["started_at"]), when(s["finished_at"])) for s in task["subtasks"])
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end, windows  # one slot: the calls ran one after another
