"""Integration fixtures: a real cluster (Reynolds + workbench agents as processes, real Postgres/Redis),
and small helpers the tests share for waiting on observable state instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from reynolds.client import ProgressFn, call
from reynolds.models import TERMINAL_TASK_STATES
from tests.integration.cluster import Cluster, Proc, cluster


@pytest.fixture
def reynolds_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path / "cluster") as c:
        yield c


@asynccontextmanager
async def sdk_client(proc: Proc, token: str, **options: Any) -> AsyncIterator[Client]:
    """The SDK's own client on ``proc``'s /mcp with a client token; ``options`` go to ``Client`` (``mode``,
    callbacks, extensions)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=None)) as http,
        Client(streamable_http_client(f"{proc.base_url}/mcp", http_client=http), **options) as client,
    ):
        yield client


def start_workbench(c: Cluster, replicas: int = 1, **reynolds_settings: str) -> tuple[Proc, list[Proc]]:
    """One Reynolds process and ``replicas`` workbench agents registered with it."""
    reynolds = c.start_reynolds(**reynolds_settings)
    agents = [c.start_agent("workbench", reynolds=reynolds) for _ in range(replicas)]
    c.wait_registered([a.name for a in agents])
    return reynolds, agents


async def wait_until(check: Callable[[], Awaitable[Any]], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; that value, or AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await anyio.sleep(interval_s)


async def wait_task(
    client: Client, task_id: str, timeout_s: float = 30.0, states: frozenset[str] = TERMINAL_TASK_STATES
) -> dict[str, Any]:
    """get_task until the task is in one of ``states``; the last view either way (AssertionError on timeout)."""
    last: dict[str, Any] = {}

    async def done() -> dict[str, Any] | None:
        nonlocal last
        last = await call(client, "get_task", {"task_id": task_id})
        return last if last["state"] in states else None

    try:
        return await wait_until(done, timeout_s, f"task {task_id} to reach {sorted(states)}", 0.1)
    except AssertionError as err:
        raise AssertionError(f"{err}; last view: {last}") from None


async def run_plan(
    client: Client, plan: dict[str, Any], timeout_s: float = 30.0, progress: ProgressFn | None = None, **options: Any
) -> dict[str, Any]:
    """orchestrate with wait=true, bounded: a task that never ends fails the test with its last view."""
    with anyio.move_on_after(timeout_s) as scope:
        return await call(client, "orchestrate", {"plan": plan, "wait": True, **options}, progress)
    assert scope.cancelled_caught
    newest = await call(client, "list_tasks", {"limit": 1})
    view = await call(client, "get_task", {"task_id": newest["tasks"][0]["task_id"]}) if newest["tasks"] else None
    raise AssertionError(f"orchestrate did not return within {timeout_s} s; newest task: {view}")


def subtask(view: dict[str, Any], subtask_id: str) -> dict[str, Any]:
    return next(s for s in view["subtasks"] if s["id"] == subtask_id)


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def agent_inflight(agent: Proc) -> int:
    """Tool calls the agent process itself says it is running now (its /health)."""
    async with httpx2.AsyncClient(timeout=2.0) as http:
        return int((await http.get(f"{agent.base_url}/health")).json()["inflight"])


def inflight_is(agent: Proc, count: int) -> Callable[[], Awaitable[bool]]:
    """A check for ``wait_until``: the agent reports exactly ``count`` calls in flight."""

    async def check() -> bool:
        return await agent_inflight(agent) == count

    return check


async def metrics_text(proc: Proc) -> str:
    async with httpx2.AsyncClient(timeout=5.0) as http:
        response = await http.get(f"{proc.base_url}/metrics")
        response.raise_for_status()
        return response.text


async def sql(c: Cluster, query: str, *args: Any) -> list[asyncpg.Record]:
    """Read the cluster's own schema directly: what Reynolds stored, not what it says it stored."""
    conn = await asyncpg.connect(c.database_url, server_settings={"search_path": c.schema})
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def respawn(c: Cluster, old: Proc) -> Proc:
    """A new Reynolds process on a dead one's port and settings (so agents find it at the same URL)."""
    proc = Proc(f"{old.name}-respawn", old.argv, old.env, old.port, c.workdir / f"{old.name}-respawn.log").start()
    proc.wait_http("/ready")
    c.reynolds.append(proc)
    return proc
