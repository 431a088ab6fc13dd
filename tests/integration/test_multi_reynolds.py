"""Several Reynolds processes share one Postgres schema and one Redis queue: together they run every
subtask exactly once, each of them does part of the work, they share each replica's call slots, and one of
them (the fleet lease holder) autoscales and exports the fleet gauges."""

from __future__ import annotations

import json
from collections import Counter

import anyio
import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import metrics_text, wait_task, wait_until

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


def two_reynolds_one_agent(c: Cluster, max_concurrency: int = 3, **settings: str) -> tuple[Proc, Proc, Proc]:
    first, second = c.start_reynolds(**settings), c.start_reynolds(**settings)
    agent = c.start_agent("workbench", reynolds=first, AGENT_MAX_CONCURRENCY=str(max_concurrency))
    c.wait_registered([agent.name])
    return first, second, agent


def sample(text: str, series: str) -> float | None:
    """The value of one exact series (name and labels as exposed) in a /metrics text, None if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def leader_and_follower(procs: tuple[Proc, Proc]) -> tuple[Proc, Proc]:
    async def one_leads() -> tuple[Proc, Proc] | None:
        flags = [sample(await metrics_text(p), "reynolds_leader") for p in procs]
        return (procs[0], procs[1]) if flags == [1, 0] else (procs[1], procs[0]) if flags == [0, 1] else None

    return await wait_until(one_leads, 20, "exactly one process to hold the fleet lease")


@pytest.mark.anyio
async def test_two_reynolds_never_run_more_calls_on_a_replica_than_its_max_concurrency(
    reynolds_cluster: Cluster,
) -> None:
    first, second, agent = two_reynolds_one_agent(
        reynolds_cluster, 3, REYNOLDS_LOG_LEVEL="DEBUG", REYNOLDS_PREFETCH="1"
    )
    task_ids = []
    for proc in (first, second):
        plan = {
            "subtasks": [
                {"id": f"r{i}", "tool": "record", "arguments": {"key": f"{proc.name}-{i}", "seconds": 0.3}}
                for i in range(12)
            ]
        }
        async with reynolds_cluster.client(proc) as c:
            task_ids.append((await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"])
    async with reynolds_cluster.client(first) as c:
        for task_id in task_ids:
            assert (await wait_task(c, task_id, timeout_s=60))["state"] == "succeeded"

    records = reynolds_cluster.records(agent)
    assert len(records) == 24
    assert max(r["running"] for r in records) <= 3, sorted(r["running"] for r in records)
    assert all(calls_logged(p) for p in (first, second)), "both processes should have called the agent"


@pytest.mark.anyio
async def test_fleet_gauges_come_from_one_process_and_do_not_double(reynolds_cluster: Cluster) -> None:
    first, second, _agent = two_reynolds_one_agent(reynolds_cluster)
    leader, follower = await leader_and_follower((first, second))
    healthy = 'reynolds_agents{pool="workbench",state="healthy"}'

    async def leader_exports() -> bool:
        return sample(await metrics_text(leader), healthy) == 1

    await wait_until(leader_exports, 20, "the leader to export the fleet gauges")
    text = await metrics_text(follower)
    assert sample(text, healthy) is None
    assert not [line for line in text.splitlines() if line.startswith(("reynolds_queue_depth{", "reynolds_agents{"))]
    assert sample(text, "reynolds_tasks_active") == 0


@pytest.mark.anyio
async def test_only_the_leader_autoscales_and_another_takes_over_when_it_dies(reynolds_cluster: Cluster) -> None:
    # the real Docker scaler, with no Docker to reach: every attempt is logged as "autoscale failed"
    settings = {
        "REYNOLDS_AUTOSCALE": "true",
        "REYNOLDS_AUTOSCALE_POOLS": '["workbench"]',
        "REYNOLDS_AUTOSCALE_MIN": "2",
        "REYNOLDS_AUTOSCALE_INTERVAL_S": "0.2",
        "REYNOLDS_LEADER_TTL_S": "2",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
    first, second, _agent = two_reynolds_one_agent(reynolds_cluster, **settings)
    leader, follower = await leader_and_follower((first, second))

    def attempts(proc: Proc) -> int:
        return proc.log.read_text().count('"autoscale failed"')

    async def tried(proc: Proc, more_than: int) -> bool:
        return attempts(proc) > more_than

    await wait_until(lambda: tried(leader, 3), 20, f"{leader.name} to try scaling")
    assert attempts(follower) == 0
    leader.kill()
    await wait_until(lambda: tried(follower, 0), 20, f"{follower.name} to take over the autoscaler")
