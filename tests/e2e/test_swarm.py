"""The same system deployed as a Docker Swarm stack (.ci/swarm.sh): every replica registers, a plan runs
over all pools, and scale_pool changes the Swarm service and the registry follows. Settings come from the
environment .ci/swarm.sh exports:

    REYNOLDS_SWARM_URL          client endpoint, e.g. http://127.0.0.1:18081/mcp
    REYNOLDS_SWARM_TOKEN_FILE   file holding the client token
    REYNOLDS_SWARM_STACK        the stack name given to docker stack deploy
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from reynolds.client import call, connect
from tests.e2e.conftest import by_id, eventually, explain

pytestmark = [pytest.mark.swarm, pytest.mark.anyio]

STACK = "com.docker.stack.namespace"
POOL_SERVICES = {
    "devops": "devops-agent",
    "platform": "platform-agent",
    "code": "code-agent",
    "docker": "docker-agent",
    "workbench": "workbench-agent",
}


@dataclass(frozen=True)
class Stack:
    url: str
    token: str
    name: str

    async def tool(self, name: str, **arguments: Any) -> Any:
        async with connect(self.url, self.token) as client:
            return await call(client, name, arguments)

    def desired_replicas(self, service: str) -> int:
        """The replica count in the Swarm service's spec (what scale_pool changes)."""
        client = docker.from_env()
        try:
            svc = client.services.get(f"{self.name}_{service}")
            return int(svc.attrs["Spec"]["Mode"]["Replicated"]["Replicas"])
        finally:
            client.close()

    async def healthy(self) -> dict[str, int]:
        view = await self.tool("list_agents")
        return {p["pool"]: sum(r["healthy"] for r in p["replicas"]) for p in view["pools"]}


@pytest.fixture(scope="module")
def stack() -> Stack:
    names = ("REYNOLDS_SWARM_URL", "REYNOLDS_SWARM_TOKEN_FILE", "REYNOLDS_SWARM_STACK")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.fail(f"the Swarm tests need a deployed stack (run .ci/swarm.sh); missing {', '.join(missing)}")
    return Stack(
        url=os.environ["REYNOLDS_SWARM_URL"],
        token=Path(os.environ["REYNOLDS_SWARM_TOKEN_FILE"]).read_text().split()[0],
        name=os.environ["REYNOLDS_SWARM_STACK"],
    )


async def test_every_replica_registers(stack: Stack) -> None:
    expected = {pool: stack.desired_replicas(service) for pool, service in POOL_SERVICES.items()}
    assert expected == {"devops": 3, "platform": 2, "code": 3, "docker": 1, "workbench": 2}

    async def all_healthy() -> bool:
        healthy = await stack.healthy()
        return all(healthy.get(pool) == n for pool, n in expected.items())

    await eventually(all_healthy, 90, f"healthy replicas {expected}")


async def test_a_plan_over_all_pools(stack: Stack) -> None:
    plan = {
        "subtasks": [
            {"id": "containers", "tool": "docker_list_containers", "arguments": {"project": stack.name}},
            {"id": "environments", "tool": "list_environments"},
            {"id": "lines", "tool": "count_lines", "arguments": {"path": "."}},
            {"id": "secrets", "tool": "scan_secrets", "arguments": {"path": "."}},
            {"id": "echo", "tool": "echo", "arguments": {"value": "swarm"}},
            {
                "id": "memory",
                "tool": "recall",
                "pool": "code",
                "arguments": {"tool": "count_lines"},
                "depends_on": ["containers", "environments", "lines", "secrets", "echo"],
            },
        ]
    }
    task = await stack.tool("orchestrate", plan=plan, wait=True, timeout_s=120)
    assert task["state"] == "succeeded", explain(task)
    subtasks = by_id(task)
    assert {s["pool"] for s in subtasks.values()} == set(POOL_SERVICES)
    assert all(s["state"] == "succeeded" and s["agent_id"] for s in subtasks.values()), subtasks
    assert subtasks["echo"]["result"]["value"] == "swarm"
    assert subtasks["environments"]["result"]["environments"]  # the context bind mount reached the agent
    assert subtasks["memory"]["started_at"] >= max(s["finished_at"] for i, s in subtasks.items() if i != "memory")


async def test_scale_pool_updates_the_swarm_service_and_the_registry_follows(stack: Stack) -> None:
    up = await stack.tool("scale_pool", pool="code", replicas=4)
    assert (up["backend"], up["project"], up["previous"], up["replicas"]) == ("swarm", stack.name, 3, 4)
    assert stack.desired_replicas("code-agent") == 4

    async def healthy_code(n: int) -> bool:
        return (await stack.healthy()).get("code") == n

    await eventually(lambda: healthy_code(4), 90, "4 healthy code replicas in list_agents")

    down = await stack.tool("scale_pool", pool="code", replicas=3)
    assert (down["previous"], down["replicas"]) == (4, 3)
    assert stack.desired_replicas("code-agent") == 3
    await eventually(lambda: healthy_code(3), 90, "list_agents to drop the removed code replica")
