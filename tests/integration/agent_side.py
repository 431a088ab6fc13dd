"""Playing an agent against a real Reynolds: register a replica over /agents/mcp with a given token, keep it
alive with heartbeats under its lease, and act as it (handoffs) — or try to, as a hostile one would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client

from reynolds.client import call, connect
from tests.integration.cluster import Proc


@dataclass
class AgentSide:
    client: Client
    agent_id: str
    pool: str
    lease: str

    async def handoff(self, task_id: str, subtask_id: str, *subtasks: dict[str, Any], **override: str) -> Any:
        arguments = {"task_id": task_id, "subtask_id": subtask_id, "subtasks": list(subtasks)}
        return await call(
            self.client, "handoff", {**arguments, "agent_id": self.agent_id, "lease": self.lease, **override}
        )


def registration(agent_id: str, pool: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"agent_id": agent_id, "pool": pool, "agent_type": "workbench", "url": url, **extra}


@contextlib.asynccontextmanager
async def agent_endpoint(reynolds: Proc, token: str) -> AsyncIterator[Client]:
    async with connect(f"{reynolds.base_url}/agents/mcp", token) as client:
        yield client


@contextlib.asynccontextmanager
async def registered(reynolds: Proc, token: str, agent_id: str, pool: str, url: str) -> AsyncIterator[AgentSide]:
    """A replica registered by the test, heartbeating every 0.5 s until the block ends (then it expires)."""
    async with agent_endpoint(reynolds, token) as client, anyio.create_task_group() as tg:
        answer = await call(client, "register_agent", registration(agent_id, pool, url))
        side = AgentSide(client, agent_id, pool, answer["lease"])

        async def beat() -> None:
            while True:
                await anyio.sleep(0.5)
                await call(client, "heartbeat", {"agent_id": agent_id, "pool": pool, "lease": side.lease})

        tg.start_soon(beat)
        yield side
        tg.cancel_scope.cancel()
