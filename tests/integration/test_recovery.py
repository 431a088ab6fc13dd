"""Failures of real processes: an agent or Reynolds killed mid-call, a whole pool gone, tools that fail.
Work is never lost and, where an idempotency key can dedupe it, never done twice."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import anyio
import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import (
    agent_inflight,
    inflight_is,
    respawn,
    run_plan,
    start_workbench,
    subtask,
    wait_task,
    wait_until,
    when,
)


async def busy_agent(agents: list[Proc]) -> Proc:
    """The one agent whose /health says it is running a call right now."""

    async def find() -> Proc | None:
        busy = [a for a in agents if a.popen and a.popen.poll() is None and await agent_inflight(a) > 0]
        return busy[0] if len(busy) == 1 else None

    return await wait_until(find, 10, "an agent to report a call in flight")


def recorded_keys(c: Cluster, agents: list[Proc]) -> Counter[str]:
    return Counter(line["key"] for agent in agents for line in c.records(agent))


@pytest.mark.anyio
async def test_agent_killed_mid_call_completes_once_on_another_replica(reynolds_cluster: Cluster) -> None:
    _, agents = start_workbench(reynolds_cluster, replicas=2)
    plan = {"subtasks": [{"id": "rec", "tool": "record", "arguments": {"key": "only-once", "seconds": 3}}]}
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan, "wait": False})
        victim = await busy_agent(agents)
        victim.kill()
        survivor = next(a for a in agents if a is not victim)
        task = await wait_task(c, task["task_id"], timeout_s=30)
    assert task["state"] == "succeeded", task
    rec = subtask(task, "rec")
    assert rec["attempts"] == 2, rec
    assert rec["agent_id"] == survivor.name, rec
    assert rec["result"]["agent_id"] == survivor.name
    assert [r["key"] for r in reynolds_cluster.records(survivor)] == ["only-once"]
    assert reynolds_cluster.records(victim) == []  # killed before its 3 s were up: no side effect


@pytest.mark.anyio
async def test_reynolds_killed_mid_task_new_process_finishes_without_repeats(reynolds_cluster: Cluster) -> None:
    # One agent, so the re-sent calls reach the replica that saw the first ones: either the first run
    # finished and the idempotency key returns its stored result, or (what the SDK does today when the
    # caller's connection drops) the first run was cancelled before its side effect and runs afresh.
    # With several replicas a re-sent call may land elsewhere and run twice: at-least-once, by design.
    reynolds, agents = start_workbench(reynolds_cluster, replicas=1)
    (agent,) = agents
    keys = ["first", "left", "right", "last"]
    plan = {
        "subtasks": [
            {"id": "first", "tool": "record", "arguments": {"key": "first", "seconds": 0.2}},
            {"id": "left", "tool": "record", "arguments": {"key": "left", "seconds": 1.5}, "depends_on": ["first"]},
            {"id": "right", "tool": "record", "arguments": {"key": "right", "seconds": 1.5}, "depends_on": ["first"]},
            {
                "id": "last",
                "tool": "record",
                "arguments": {"key": "last", "seconds": 0.2},
                "depends_on": ["left", "right"],
            },
        ]
    }
    async with reynolds_cluster.client(reynolds) as c:
        task = await call(c, "orchestrate", {"plan": plan, "wait": False})

        async def middle_in_flight() -> bool:
            view = await call(c, "get_task", {"task_id": task["task_id"]})
            running = {s["id"] for s in view["subtasks"] if s["state"] == "running"}
            return {"left", "right"} <= running and await agent_inflight(agent) == 2

        await wait_until(middle_in_flight, 10, "left and right to be running on the agent")
    reynolds.kill()
    replacement = respawn(reynolds_cluster, reynolds)
    async with reynolds_cluster.client(replacement) as c:
        task = await wait_task(c, task["task_id"], timeout_s=40)
    assert task["state"] == "succeeded", task
    assert recorded_keys(reynolds_cluster, agents) == Counter(keys), reynolds_cluster.records(agent)
    for s in task["subtasks"]:
        assert s["state"] == "succeeded" and s["result"]["times_seen"] == 1, s
        # the two calls in flight at the crash were sent again by the new process (more than once if a slow
        # machine let a lease lapse: the idempotency key still ran each once); the first, done before, once
        if s["id"] in ("left", "right"):
            assert s["attempts"] >= 2, s
        elif s["id"] == "first":
            assert s["attempts"] == 1, s


@pytest.mark.anyio
async def test_dead_pool_fails_subtask_with_no_healthy_replica_reason(reynolds_cluster: Cluster) -> None:
    _, agents = start_workbench(reynolds_cluster, replicas=2)
    plan = {
        "subtasks": [
            # plenty of attempts, so what ends it is the empty pool, not the attempt budget
            {"id": "doomed", "tool": "record", "arguments": {"key": "doomed", "seconds": 3}, "max_attempts": 20},
            {"id": "after", "tool": "echo", "arguments": {"value": 1}, "depends_on": ["doomed"]},
            {"id": "quick", "tool": "echo", "arguments": {"value": 2}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await call(c, "orchestrate", {"plan": plan, "wait": False})
        await busy_agent(agents)
        for agent in agents:
            agent.kill()
        task = await wait_task(c, task["task_id"], timeout_s=40)
    assert task["state"] == "failed", task
    doomed = subtask(task, "doomed")
    assert doomed["state"] == "failed", doomed
    assert "no healthy replica in pool 'workbench'" in doomed["error"], doomed
    assert doomed["attempts"] < 20, doomed
    assert subtask(task, "after")["state"] == "skipped"
    assert subtask(task, "after")["attempts"] == 0
    assert subtask(task, "quick")["state"] == "succeeded"
    assert recorded_keys(reynolds_cluster, agents)["doomed"] == 0


@pytest.mark.anyio
async def test_tool_errors_retry_only_when_marked_retryable(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    plan = {
        "subtasks": [
            {
                "id": "flaky",
                "tool": "fail",
                "arguments": {"message": "flaky boom"},
                "retryable": True,
                "max_attempts": 2,
            },
            {"id": "broken", "tool": "fail", "arguments": {"message": "hard boom"}},
            {"id": "fine", "tool": "echo", "arguments": {"value": "ok"}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan)
    assert task["state"] == "failed", task
    flaky, broken = subtask(task, "flaky"), subtask(task, "broken")
    assert flaky["state"] == "failed" and flaky["attempts"] == 2, flaky
    assert "flaky boom" in flaky["error"], flaky
    assert broken["state"] == "failed" and broken["attempts"] == 1, broken
    assert "hard boom" in broken["error"], broken
    assert subtask(task, "fine")["state"] == "succeeded"


@pytest.mark.anyio
async def test_call_timeout_retries_then_fails_and_frees_the_agent(reynolds_cluster: Cluster) -> None:
    _, (agent,) = start_workbench(reynolds_cluster)
    plan = {
        "subtasks": [
            {"id": "stuck", "tool": "sleep", "arguments": {"seconds": 20}, "timeout_s": 0.5, "max_attempts": 2},
            {"id": "after", "tool": "echo", "arguments": {"value": 1}, "depends_on": ["stuck"]},
        ]
    }
    async with reynolds_cluster.client() as c:
        task = await run_plan(c, plan, timeout_s=15)
    assert task["state"] == "failed", task
    stuck = subtask(task, "stuck")
    assert stuck["attempts"] == 2, stuck
    assert "did not answer within 0.5 s" in stuck["error"] and "gave up after 2 attempts" in stuck["error"], stuck
    assert subtask(task, "after")["state"] == "skipped"
    # the timed-out calls do not keep running on the agent
    await wait_until(inflight_is(agent, 0), 5, "the agent to stop the timed-out sleeps")


@pytest.mark.anyio
async def test_work_queued_behind_a_busy_pool_still_waits_for_a_replacement_replica(reynolds_cluster: Cluster) -> None:
    # no_replica_wait_s bounds how long work waits for *some* replica to exist. Work that already queued a
    # long time behind a busy replica must still get that whole wait once the pool loses its replica.
    wait_s = 6.0
    reynolds = reynolds_cluster.start_reynolds(REYNOLDS_NO_REPLICA_WAIT_S=str(wait_s))
    first = reynolds_cluster.start_agent("workbench", reynolds=reynolds, AGENT_MAX_CONCURRENCY="1")
    reynolds_cluster.wait_registered([first.name])
    plan = {
        "subtasks": [
            {"id": "hog", "tool": "record", "arguments": {"key": "hog", "seconds": wait_s + 2}},
            {"id": "q1", "tool": "record", "arguments": {"key": "q1"}},
            {"id": "q2", "tool": "record", "arguments": {"key": "q2"}},
        ]
    }
    async with reynolds_cluster.client() as c:
        task_id = (await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"]
        submitted = time.monotonic()
        await wait_until(inflight_is(first, 1), 10, "the hog to occupy the only slot")
        # q1 and q2 now wait behind the hog for longer than no_replica_wait_s
        await anyio.sleep(max(0.0, wait_s + 0.5 - (time.monotonic() - submitted)))
        view = await call(c, "get_task", {"task_id": task_id})
        assert [subtask(view, q)["state"] for q in ("q1", "q2")] == ["queued", "queued"], view
        first.kill()
        killed_at = datetime.now(UTC)
        second = reynolds_cluster.start_agent("workbench", reynolds=reynolds)  # ready in a few seconds
        task = await wait_task(c, task_id, timeout_s=40)
    outcome = [
        (s["id"], s["state"], s["error"], f"ended {(when(s['finished_at']) - killed_at).total_seconds():.1f} s after")
        for s in task["subtasks"]
    ]
    assert task["state"] == "succeeded", outcome
    assert recorded_keys(reynolds_cluster, [first, second]) == Counter(["hog", "q1", "q2"])
