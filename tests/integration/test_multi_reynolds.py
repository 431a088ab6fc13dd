"""Several Reynolds processes share one Postgres schema and one Redis queue: together they run every
subtask exactly once, and each of them does part of the work."""

from __future__ import annotations

import json
from collections import Counter

import anyio
import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import wait_task, wait_until

PER_PROCESS = 20


def calls_logged(proc: Proc) -> Counter[str]:
    """subtask ids this Reynolds process sent to an agent, from its debug log ("calling" events)."""
    sent: Counter[str] = Counter()
    for line in proc.log.read_text().splitlines():
        if line.startswith("{") and '"calling"' in line:
            event = json.loads(line)
            if event.get("event") == "calling":
                sent[f"{event['task_id']}/{event['subtask_id']}"] += 1
    return sent


@pytest.mark.anyio
async def test_two_reynolds_share_one_queue_without_double_dispatch(reynolds_cluster: Cluster) -> None:
    # prefetch 1: a process holds at most its free call slots plus one message, so neither can take the
    # whole queue in one read while the other waits
    debug = {"REYNOLDS_LOG_LEVEL": "DEBUG", "REYNOLDS_PREFETCH": "1"}
    first, second = reynolds_cluster.start_reynolds(**debug), reynolds_cluster.start_reynolds(**debug)
    # each agent registers with a different process; the registration is shared through Redis.
    agents = [
        reynolds_cluster.start_agent("workbench", reynolds=target, AGENT_MAX_CONCURRENCY="4")
        for target in (first, second)
    ]
    reynolds_cluster.wait_registered([a.name for a in agents])
    for proc in (first, second):
        async with reynolds_cluster.client(proc) as c:

            async def sees_both() -> bool:
                fleet = await call(c, "list_agents", {})
                return [len(p["replicas"]) for p in fleet["pools"] if p["pool"] == "workbench"] == [2]

            await wait_until(sees_both, 10, f"{proc.name} to see both agents")

    task_ids: dict[str, str] = {}

    async def submit(proc: Proc) -> None:
        plan = {
            "subtasks": [
                {"id": f"r{i}", "tool": "record", "arguments": {"key": f"{proc.name}-{i}", "seconds": 0.2}}
                for i in range(PER_PROCESS)
            ]
        }
        async with reynolds_cluster.client(proc) as c:
            task_ids[proc.name] = (await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"]

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit, first)
        tg.start_soon(submit, second)

    views = []
    async with reynolds_cluster.client(first) as c:
        for task_id in task_ids.values():
            views.append(await wait_task(c, task_id, timeout_s=60))
    for view in views:
        assert view["state"] == "succeeded", view
        assert all(s["attempts"] == 1 for s in view["subtasks"]), [s for s in view["subtasks"] if s["attempts"] != 1]

    expected = Counter(f"{p.name}-{i}" for p in (first, second) for i in range(PER_PROCESS))
    recorded = Counter(r["key"] for a in agents for r in reynolds_cluster.records(a))
    assert recorded == expected, recorded - expected or expected - recorded

    sent = [calls_logged(first), calls_logged(second)]
    assert all(sent), f"each process should have dispatched some calls: {[sum(s.values()) for s in sent]}"
    assert sum(sent, Counter()) == Counter({f"{t}/r{i}": 1 for t in task_ids.values() for i in range(PER_PROCESS)})
