"""Idempotency keys on a real agent server (the workbench, whose ``record`` tool leaves a countable line per
run), called through an in-memory MCP client: a repeated key returns the stored result instead of running
the tool again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from agents.runtime import ToolError
from agents.runtime.app import build_server
from agents.runtime.context import AgentRuntime
from agents.runtime.idempotency import IDEMPOTENCY_META_KEY, IdempotencyMiddleware
from agents.runtime.settings import AgentSettings
from agents.workbench.tools import RECORD_FILE

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def workbench(
    agent_settings: Callable[..., AgentSettings], capacity: int = 10_000
) -> AsyncIterator[tuple[Client, AgentRuntime, dict[str, int]]]:
    """The workbench's MCPServer with the idempotency middleware in front, as build_app sets it up, plus a
    ``flaky`` tool that fails on its first run for each value."""
    runtime = AgentRuntime(agent_settings("workbench"))
    server = build_server(runtime)
    server.middleware.append(IdempotencyMiddleware(capacity=capacity))
    runs: dict[str, int] = {}

    @server.tool()
    async def flaky(value: str) -> str:
        """Fail the first time each value is seen, succeed afterwards."""
        runs[value] = runs.get(value, 0) + 1
        if runs[value] == 1:
            raise ToolError(f"first run of {value} fails")
        return f"{value} ran {runs[value]} times"

    async with Client(server) as client:
        yield client, runtime, runs


def records(runtime: AgentRuntime) -> list[str]:
    path: Path = runtime.layers.memory / RECORD_FILE
    return [json.loads(line)["key"] for line in path.read_text().splitlines()] if path.exists() else []


async def call(client: Client, tool: str, arguments: dict[str, Any], key: str | None) -> Any:
    meta = {IDEMPOTENCY_META_KEY: key} if key is not None else None
    return await client.call_tool(tool, arguments, meta=meta)


async def test_the_same_key_twice_runs_once(agent_settings: Callable[..., AgentSettings]) -> None:
    async with workbench(agent_settings) as (client, runtime, _):
        first = await call(client, "record", {"key": "deploy"}, "task-1/deploy")
        second = await call(client, "record", {"key": "deploy"}, "task-1/deploy")
    assert not first.is_error and not second.is_error
    assert first.structured_content == second.structured_content
    assert first.structured_content["times_seen"] == 1
    assert records(runtime) == ["deploy"]


async def test_concurrent_calls_with_the_same_key_run_once(agent_settings: Callable[..., AgentSettings]) -> None:
    results: list[Any] = []
    async with workbench(agent_settings) as (client, runtime, _):

        async def one() -> None:
            results.append(await call(client, "record", {"key": "slow", "seconds": 0.3}, "task-2/slow"))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(one)
    assert records(runtime) == ["slow"]
    assert len(results) == 4
    assert all(not r.is_error and r.structured_content["times_seen"] == 1 for r in results)


async def test_different_keys_run_separately(agent_settings: Callable[..., AgentSettings]) -> None:
    async with workbench(agent_settings) as (client, runtime, _):
        a = await call(client, "record", {"key": "same-work"}, "task-3/a")
        b = await call(client, "record", {"key": "same-work"}, "task-3/b")
    assert records(runtime) == ["same-work", "same-work"]
    assert (a.structured_content["times_seen"], b.structured_content["times_seen"]) == (1, 2)


async def test_calls_without_a_key_always_run(agent_settings: Callable[..., AgentSettings]) -> None:
    async with workbench(agent_settings) as (client, runtime, _):
        await call(client, "record", {"key": "plain"}, None)
        await call(client, "record", {"key": "plain"}, None)
        await call(client, "record", {"key": "plain"}, "")
    assert records(runtime) == ["plain", "plain", "plain"]


async def test_error_results_are_not_cached(agent_settings: Callable[..., AgentSettings]) -> None:
    async with workbench(agent_settings) as (client, _, runs):
        failed = await call(client, "flaky", {"value": "v"}, "task-4/flaky")
        retried = await call(client, "flaky", {"value": "v"}, "task-4/flaky")
        replayed = await call(client, "flaky", {"value": "v"}, "task-4/flaky")
    assert failed.is_error and "first run of v fails" in failed.content[0].text
    assert not retried.is_error and retried.structured_content == {"result": "v ran 2 times"}
    assert replayed.structured_content == {"result": "v ran 2 times"}
    assert runs == {"v": 2}


async def test_oldest_keys_are_forgotten_past_capacity(agent_settings: Callable[..., AgentSettings]) -> None:
    async with workbench(agent_settings, capacity=2) as (client, runtime, _):
        for key in ("k1", "k2", "k3"):
            await call(client, "record", {"key": key}, f"task-5/{key}")
        await call(client, "record", {"key": "k3"}, "task-5/k3")  # still remembered
        await call(client, "record", {"key": "k1"}, "task-5/k1")  # forgotten: runs again
    assert records(runtime) == ["k1", "k2", "k3", "k1"]
