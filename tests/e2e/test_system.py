"""The whole system under docker compose: real images, real Postgres/Redis/Prometheus, replicated agents.
Tests run in file order; the last one takes the deployment down and up again."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections import Counter

import anyio
import pytest

from reynolds.client import connect
from tests.e2e.conftest import System, Tool, by_id, eventually, explain

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AGENT_SERVICES = {
    "devops": "devops-agent",
    "platform": "platform-agent",
    "code": "code-agent",
    "docker": "docker-agent",
}


async def wait_done(tool: Tool, task_id: str, within_s: float) -> dict:
    async def finished() -> dict | None:
        task = await tool("get_task", task_id=task_id)
        return task if task["state"] in ("succeeded", "failed", "cancelled") else None

    return await eventually(finished, within_s, f"task {task_id} to finish")


async def replicas(tool: Tool, pool: str) -> list[dict]:
    view = await tool("list_agents")
    return next((p["replicas"] for p in view["pools"] if p["pool"] == pool), [])


async def test_every_replica_registers(system: System, tool: Tool) -> None:
    expected = {pool: len(system.containers(service)) for pool, service in AGENT_SERVICES.items()}
    expected["workbench"] = len(system.containers("workbench-agent"))
    assert expected == {"devops": 3, "platform": 2, "code": 3, "docker": 1, "workbench": 2}

    async def all_healthy() -> dict | None:
        view = await tool("list_agents")
        healthy = {p["pool"]: sum(r["healthy"] for r in p["replicas"]) for p in view["pools"]}
        return view if all(healthy.get(pool) == n for pool, n in expected.items()) else None

    view = await eventually(all_healthy, 60, f"healthy replicas {expected}")
    tools = {p["pool"]: set(p["tools"]) for p in view["pools"]}
    assert {"recall", "scan_secrets"} <= tools["devops"] and "docker_list_containers" not in tools["devops"]
    assert {"recall", "docker_list_containers"} <= tools["docker"]
    assert {"recall", "list_environments"} <= tools["platform"]
    assert {"recall", "count_lines", "lint_python"} <= tools["code"]


async def test_a_plan_across_all_three_pools(system: System, tool: Tool) -> None:
    plan = {
        "subtasks": [
            {"id": "containers", "tool": "docker_list_containers", "arguments": {"project": system.project}},
            {"id": "environments", "tool": "list_environments"},
            {"id": "lines", "tool": "count_lines", "arguments": {"path": "."}},
            {
                "id": "memory",
                "tool": "recall",
                "pool": "docker",
                "arguments": {"tool": "docker_list_containers"},
                "depends_on": ["containers", "environments", "lines"],
            },
        ]
    }
    task = await tool("orchestrate", plan=plan, wait=True, timeout_s=120)
    assert task["state"] == "succeeded", explain(task)
    subtasks = by_id(task)
    assert {s["pool"] for s in subtasks.values()} == {"docker", "platform", "code"}
    assert all(s["state"] == "succeeded" and s["agent_id"] for s in subtasks.values()), subtasks

    # Real work: the docker agent read this very deployment through the Docker socket ...
    services = {c["service"] for c in subtasks["containers"]["result"]["containers"]}
    assert {"reynolds", "devops-agent", "postgres", "redis"} <= services
    # ... the platform agent read the mounted context, the code agent its (empty) workspace ...
    assert subtasks["environments"]["result"]["environments"]
    assert subtasks["lines"]["result"] is not None
    # ... and the dependent step ran after all three and remembers a docker_list_containers run.
    assert subtasks["memory"]["started_at"] >= max(
        subtasks[i]["finished_at"] for i in ("containers", "environments", "lines")
    )
    assert any(s["tool"] == "docker_list_containers" and s["runs"] >= 1 for s in subtasks["memory"]["result"]["stats"])


async def test_parallel_subtasks_spread_over_replicas(tool: Tool) -> None:
    plan = {"subtasks": [{"id": f"s{i}", "tool": "sleep", "arguments": {"seconds": 2}} for i in range(6)]}
    started = anyio.current_time()
    task = await tool("orchestrate", plan=plan, wait=True, timeout_s=120)
    elapsed = anyio.current_time() - started
    assert task["state"] == "succeeded", explain(task)
    used = Counter(s["agent_id"] for s in task["subtasks"])
    assert len(used) >= 2, f"all subtasks ran on one replica: {used}"
    assert elapsed < 6 * 2, f"6 x 2 s sleeps took {elapsed:.1f}s: they did not run in parallel"


async def test_agent_killed_mid_call_completes_once(system: System, tool: Tool) -> None:
    key = f"kill-{uuid.uuid4().hex[:8]}"
    plan = {"subtasks": [{"id": "work", "tool": "record", "arguments": {"key": key, "seconds": 8}}]}
    task = await tool("orchestrate", plan=plan, wait=False)

    async def running_on() -> str | None:
        sub = by_id(await tool("get_task", task_id=task["task_id"]))["work"]
        if sub["state"] != "running":
            return None
        if sub["agent_id"]:
            return sub["agent_id"]
        busy = [r["agent_id"] for r in await replicas(tool, "workbench") if r["inflight"] > 0]
        return busy[0] if len(busy) == 1 else None

    victim_id = await eventually(running_on, 30, "the subtask to start on one replica", every=0.3)
    victims = [c for c in system.containers("workbench-agent") if c.id.startswith(victim_id) or c.name == victim_id]
    assert len(victims) == 1, f"no workbench container for agent {victim_id}"
    victims[0].kill()

    done = await wait_done(tool, task["task_id"], 120)
    sub = by_id(done)["work"]
    assert done["state"] == "succeeded", explain(done)
    assert sub["attempts"] >= 2
    # Both replicas share one memory volume: the record file holds the key exactly once.
    assert sub["result"]["key"] == key and sub["result"]["times_seen"] == 1, sub["result"]
    assert sub["agent_id"] != victim_id

    # A killed container stays down (docker kill counts as a manual stop); bring it back, it rejoins.
    victims[0].start()

    async def both_back() -> bool:
        return sum(r["healthy"] for r in await replicas(tool, "workbench")) == 2

    await eventually(both_back, 60, "the restarted workbench replica to rejoin")


async def test_reynolds_restarted_mid_task_completes(system: System, tool: Tool) -> None:
    plan = {
        "subtasks": [
            {"id": "first", "tool": "sleep", "arguments": {"seconds": 6}},
            {"id": "second", "tool": "echo", "arguments": {"value": "after restart"}, "depends_on": ["first"]},
        ]
    }
    task = await tool("orchestrate", plan=plan, wait=False)

    async def first_running() -> bool:
        return by_id(await tool("get_task", task_id=task["task_id"]))["first"]["state"] == "running"

    await eventually(first_running, 30, "the first subtask to start", every=0.3)
    (reynolds,) = system.containers("reynolds")
    reynolds.restart(timeout=30)

    async def ready() -> bool:
        return system.ready()

    await eventually(ready, 90, "Reynolds to be ready again")
    done = await wait_done(tool, task["task_id"], 120)
    assert done["state"] == "succeeded", explain(done)
    assert by_id(done)["second"]["result"]["value"] == "after restart"


async def test_prometheus_scrapes_every_replica(system: System, tool: Tool) -> None:
    jobs = {"reynolds": "reynolds", **{service: service for service in AGENT_SERVICES.values()}}

    async def all_up() -> dict | None:
        targets = system.prometheus_get("/api/v1/targets?state=active")["data"]["activeTargets"]
        up = Counter(t["labels"]["job"] for t in targets if t["health"] == "up")
        want = {job: len(system.containers(service)) for job, service in jobs.items()}
        return up if all(up[job] == n for job, n in want.items()) else None

    up = await eventually(all_up, 90, "Prometheus to scrape every replica", every=2)
    assert up["devops-agent"] == 3 and up["code-agent"] == 3 and up["platform-agent"] == 2 and up["reynolds"] == 1

    # Counters start again at every Reynolds restart (the test before this one restarts it), so count a task
    # finished by the process running now, and wait for a scrape taken after it: whatever ran before.
    task = await tool("orchestrate", plan={"subtasks": [{"id": "count", "tool": "echo"}]}, wait=True, timeout_s=60)
    assert task["state"] == "succeeded", explain(task)

    async def counted() -> float | None:
        query = "sum(reynolds_tasks_total{state='succeeded'})"
        result = system.prometheus_get("/api/v1/query?query=" + urllib.parse.quote(query))["data"]["result"]
        return float(result[0]["value"][1]) if result and float(result[0]["value"][1]) >= 1 else None

    await eventually(counted, 60, "a scrape that counts the task just finished", every=2)


async def test_scale_a_pool_up_and_down(system: System, tool: Tool) -> None:
    async def healthy_count(pool: str, n: int) -> bool:
        return sum(r["healthy"] for r in await replicas(tool, pool)) == n and len(await replicas(tool, pool)) == n

    up = await tool("scale_pool", pool="platform", replicas=4)
    assert (up["previous"], up["replicas"], up["backend"]) == (2, 4, "compose")
    assert len(up["added"]) == 2
    assert len(system.containers("platform-agent")) == 4
    await eventually(lambda: healthy_count("platform", 4), 90, "4 healthy platform replicas")

    down = await tool("scale_pool", pool="platform", replicas=2)
    assert (down["previous"], down["replicas"]) == (4, 2)
    assert sorted(down["removed"]) == sorted(up["added"])  # the newest go first
    assert len(system.containers("platform-agent", running_only=False)) == 2
    await eventually(lambda: healthy_count("platform", 2), 90, "list_agents to drop the removed replicas")

    async with connect(system.url, system.token) as client:
        refused = await client.call_tool("scale_pool", {"pool": "nope", "replicas": 1})
    assert refused.is_error
    assert "unknown pool 'nope'" in refused.content[0].text


async def test_an_experiment_compares_replica_counts_and_puts_the_pool_back(system: System, tool: Tool) -> None:
    before = len(system.containers("workbench-agent"))
    sleeps = [{"id": f"s{i}", "tool": "sleep", "arguments": {"seconds": 0.2}} for i in range(4)]
    scenario = {
        "name": "replica-counts",
        "workload": {"plan": {"subtasks": sleeps}},
        "strategies": [f"replicas:workbench={before + 1}", "replicas:workbench=1"],
        "repetitions": 1,
        "timeout_s": 120,
    }
    started = await tool("run_experiment", scenario=json.dumps(scenario), wait=False)

    async def ended() -> dict | None:
        view = await tool("get_experiment", experiment_id=started["experiment_id"])
        return view if view["state"] != "running" else None

    view = await eventually(ended, 300, "the replica-count experiment to end", every=2)
    assert view["state"] == "succeeded", view
    for run in view["runs"]:
        task = await tool("get_task", task_id=run["task_id"])
        assert task["state"] == "succeeded", explain(task)
        if run["strategy"] == "replicas:workbench=1":  # only one replica was registered when it ran
            assert len({s["agent_id"] for s in task["subtasks"]}) == 1, task["subtasks"]
    assert len(system.containers("workbench-agent")) == before  # the experiment put the pool back
    await eventually(lambda: _registered(tool, "workbench", before), 90, f"{before} workbench replicas again")


async def _registered(tool: Tool, pool: str, n: int) -> bool:
    return len(await replicas(tool, pool)) == n


async def test_finished_task_survives_down_and_up(system: System, tool: Tool) -> None:
    plan = {"subtasks": [{"id": "keep", "tool": "echo", "arguments": {"value": "persisted"}}]}
    task = await tool("orchestrate", plan=plan, wait=True, timeout_s=60)
    assert task["state"] == "succeeded", explain(task)

    system.compose_run("down", "--timeout", "30")
    assert not system.containers("reynolds", running_only=False)
    system.compose_run("up", "--detach", "--wait", "--wait-timeout", "180")

    again = await tool("get_task", task_id=task["task_id"])
    assert again["state"] == "succeeded"
    assert by_id(again)["keep"]["result"]["value"] == "persisted"
