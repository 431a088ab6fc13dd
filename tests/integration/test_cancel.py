"""cancel_task stops a running task: nothing more is dispatched and the in-flight agent call is cancelled."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster
from tests.integration.conftest import agent_inflight, inflight_is, start_workbench, subtask, wait_task, wait_until


@pytest.mark.anyio
async def test_cancel_stops_in_flight_work(reynolds_cluster: Cluster) -> None:
    _, (agent,) = start_workbench(reynolds_cluster)
    plan = {
        "subtasks": [
            {"id": "long", "tool": "sleep", "arguments": {"seconds": 30}},
            {"id": "after", "tool": "record", "arguments": {"key": "after"}, "depends_on": ["long"]},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan, "wait": False})
        task_id = task["task_id"]

        async def long_running_on_agent() -> bool:
            view = await call(c, "get_task", {"task_id": task_id})
            return subtask(view, "long")["state"] == "running" and await agent_inflight(agent) == 1

        await wait_until(long_running_on_agent, 10, "the long sleep to be running on the agent")
        asked = time.monotonic()
        answer = await call(c, "cancel_task", {"task_id": task_id})
        assert answer["state"] == "cancelled", answer
        task = await wait_task(c, task_id, timeout_s=5)
        # the agent's own count of running calls drops: the cancellation reached the call itself
        await wait_until(inflight_is(agent, 0), 5, "the agent's sleep call to be cancelled")
        stopped_after = time.monotonic() - asked
        again = await call(c, "cancel_task", {"task_id": task_id})  # cancelling twice changes nothing
    assert task["state"] == "cancelled", task
    assert again["state"] == "cancelled" and again["finished_at"] == task["finished_at"]
    long, after = subtask(task, "long"), subtask(task, "after")
    assert long["state"] == "cancelled" and long["result"] is None, long
    assert after["state"] == "cancelled" and after["attempts"] == 0 and after["started_at"] is None, after
    assert stopped_after < 5, stopped_after
    assert reynolds_cluster.records(agent) == []  # the dependent never ran
    # the agent remembers the sleep as ended without success, long before its 30 s were up
    outcomes = [
        json.loads(line) for line in (Path(agent.env["MEMORY_DIR"]) / "outcomes.jsonl").read_text().splitlines()
    ]
    sleeps = [o for o in outcomes if o["tool"] == "sleep"]
    assert len(sleeps) == 1 and not sleeps[0]["ok"] and sleeps[0]["duration_s"] < 10, sleeps


@pytest.mark.anyio
async def test_cancel_through_another_reynolds_reaches_the_dispatching_one(reynolds_cluster: Cluster) -> None:
    dispatcher, (agent,) = start_workbench(reynolds_cluster)
    plan = {"subtasks": [{"id": "long", "tool": "sleep", "arguments": {"seconds": 30}}]}
    async with reynolds_cluster.client(dispatcher) as c:
        task_id = (await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"]
        await wait_until(inflight_is(agent, 1), 10, "the sleep to be running on the agent")
    # started after the call went out, so the call is certainly not this process's own
    other = reynolds_cluster.start_reynolds()
    async with reynolds_cluster.client(other) as c:
        answer = await call(c, "cancel_task", {"task_id": task_id})
        assert answer["state"] == "cancelled", answer
        await wait_until(inflight_is(agent, 0), 5, "the first process to cancel its call on the agent")
