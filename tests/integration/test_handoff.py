"""Agents hand work back to Reynolds over /agents/mcp: new subtasks join the running task, and loop
prevention refuses repeats and chains that are too deep, recording each refusal. The handoff comes from the
replica running the parent subtask (the test registers that replica itself, so it holds its lease)."""

from __future__ import annotations

from typing import Any

import pytest

from reynolds import errors
from reynolds.client import call
from tests.integration.agent_side import registered
from tests.integration.cluster import Cluster
from tests.integration.conftest import metrics_text, sql, subtask, wait_task, wait_until

PARENT_SLEEP = {"seconds": 4}
CHILD_SLEEP = {"seconds": 3.5}  # long enough to hand off from while it runs


@pytest.mark.anyio
async def test_handoff_adds_subtasks_and_loop_prevention_refuses(reynolds_cluster: Cluster) -> None:
    reynolds = reynolds_cluster.start_reynolds(REYNOLDS_MAX_HANDOFF_DEPTH="1")
    agent = reynolds_cluster.start_agent("workbench", reynolds=reynolds, MCP_ENDPOINT="")  # registered below
    plan = {"subtasks": [{"id": "parent", "tool": "sleep", "arguments": PARENT_SLEEP}]}
    async with (
        reynolds_cluster.client() as c,
        registered(reynolds, reynolds_cluster.agent_token, "wb-1", "workbench", f"{agent.base_url}/mcp") as side,
    ):
        task_id = (await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"]

        async def handoff(parent: str, *subtasks: dict[str, Any]) -> dict[str, Any]:
            return await side.handoff(task_id, parent, *subtasks)

        async def parent_running() -> bool:
            return subtask(await call(c, "get_task", {"task_id": task_id}), "parent")["state"] == "running"

        await wait_until(parent_running, 10, "the parent to run on wb-1")

        added = await handoff(
            "parent",
            {"id": "child", "tool": "sleep", "arguments": CHILD_SLEEP},
            {"id": "follow_up", "tool": "echo", "arguments": {"value": "after"}, "depends_on": ["parent", "child"]},
        )
        assert added == {"task_id": task_id, "added": ["child", "follow_up"]}

        # the child runs at once, while its parent is still running
        async def child_running() -> dict[str, Any] | None:
            view = await call(c, "get_task", {"task_id": task_id})
            return view if subtask(view, "child")["state"] == "running" else None

        view = await wait_until(child_running, 10, "the handed-off child to run")
        assert subtask(view, "parent")["state"] == "running", view

        with pytest.raises(errors.ReynoldsError) as repeat:
            await handoff("parent", {"id": "again", "tool": "sleep", "arguments": PARENT_SLEEP})
        assert "repeats sleep with the same arguments" in str(repeat.value), repeat.value

        with pytest.raises(errors.ReynoldsError) as deep:
            await handoff("child", {"id": "grandchild", "tool": "echo", "arguments": {"value": "deeper"}})
        assert "max_handoff_depth" in str(deep.value) and "2 deep" in str(deep.value), deep.value

        with pytest.raises(errors.ReynoldsError) as clash:
            await handoff("parent", {"id": "child", "tool": "echo", "arguments": {"value": "other"}})
        assert "already has subtasks child" in str(clash.value), clash.value

        task = await wait_task(c, task_id, timeout_s=20)
    assert task["state"] == "succeeded", task
    assert [s["id"] for s in task["subtasks"]] == ["parent", "child", "follow_up"], task
    follow_up = subtask(task, "follow_up")
    assert follow_up["started_at"] >= subtask(task, "parent")["finished_at"], task

    refusals = await sql(
        reynolds_cluster,
        "SELECT subtask_id, data->>'reason' AS reason FROM events WHERE kind = 'loop_refused' ORDER BY id",
    )
    assert [(r["subtask_id"], r["reason"]) for r in refusals] == [("parent", "repeat"), ("child", "depth")]
    metrics = await metrics_text(reynolds)
    assert 'reynolds_loop_refusals_total{reason="repeat"} 1.0' in metrics
    assert 'reynolds_loop_refusals_total{reason="depth"} 1.0' in metrics
