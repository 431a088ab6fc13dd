"""The shortest path through the whole system: a plan goes in over MCP, a result comes out."""

from __future__ import annotations

import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster


@pytest.mark.anyio
async def test_diamond_plan_runs_and_passes_data(reynolds_cluster: Cluster) -> None:
    reynolds_cluster.start_reynolds()
    reynolds_cluster.start_agent("workbench")
    reynolds_cluster.wait_registered(["workbench-0"])
    plan = {
        "subtasks": [
            {"id": "a", "tool": "echo", "arguments": {"value": {"n": 7}}},
            {"id": "b", "tool": "echo", "arguments": {"value": {"$from": "a", "path": "value.n"}}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan})
    assert task["state"] == "succeeded"
    b = next(s for s in task["subtasks"] if s["id"] == "b")
    assert b["result"]["value"] == 7
    assert b["depends_on"] == ["a"]


@pytest.mark.anyio
async def test_get_task_can_show_the_event_log(reynolds_cluster: Cluster) -> None:
    reynolds_cluster.start_reynolds()
    reynolds_cluster.start_agent("workbench")
    reynolds_cluster.wait_registered(["workbench-0"])
    plan = {
        "subtasks": [
            {"id": "bad", "tool": "fail", "retryable": True, "max_attempts": 2},
            {"id": "after", "tool": "echo", "depends_on": ["bad"]},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan})
        assert task["state"] == "failed" and task["events"] is None  # not unless asked
        view = await call(c, "get_task", {"task_id": task["task_id"], "include_events": True})
    kinds = [e["kind"] for e in view["events"]]
    assert kinds[0] == "task_submitted" and kinds[-1] == "task_failed"
    assert kinds.count("subtask_retry") == 1 and "subtask_failed" in kinds and "subtasks_skipped" in kinds
    retry = next(e for e in view["events"] if e["kind"] == "subtask_retry")
    assert retry["subtask_id"] == "bad" and "workbench failure requested" in retry["data"]["error"]
