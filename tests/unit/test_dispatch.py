"""The dispatcher in-process, against real Postgres and Redis and a real workbench agent over HTTP: it reads,
claims, calls with the idempotency key, hands the outcome to the engine and acks; its loops ride out a Redis
that lost its streams and groups (NOGROUP) mid-run. Each test has its own schema, key prefix and agent."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
import uvicorn
from prometheus_client import CollectorRegistry

from agents.runtime.app import build_app as build_agent_app
from agents.runtime.settings import AgentSettings
from reynolds.config import Settings
from reynolds.dispatch import Dispatcher
from reynolds.engine import Engine
from reynolds.keys import Keys
from reynolds.metrics import Metrics
from reynolds.models import Plan, TaskState
from reynolds.plan import build_plan
from reynolds.queue import TaskQueue
from reynolds.registry import Registry, Replica
from reynolds.sessions import Sessions
from reynolds.store import Store
from tests.integration.cluster import free_port

pytestmark = pytest.mark.anyio
TOKEN = "dispatch-test-token"


@pytest.fixture
async def agent_url(tmp_path: Path) -> AsyncIterator[str]:
    """A workbench agent served by uvicorn in this process (no registration: the test registers it)."""
    port = free_port()
    settings = AgentSettings(
        agent_type="workbench",
        agent_id="wb-1",
        agent_token=TOKEN,
        agent_host="127.0.0.1",
        agent_port=port,
        agent_url=f"http://127.0.0.1:{port}/mcp",
        memory_dir=tmp_path / "memory",
        workspace_dir=tmp_path / "workspace",
        knowledge_dir=tmp_path / "knowledge",
        context_dir=tmp_path / "context",
        task_workspaces=False,  # these tasks are stored directly, with no prepared workspace
    )
    server = uvicorn.Server(uvicorn.Config(build_agent_app(settings), host="127.0.0.1", port=port, log_config=None))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(30):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await anyio.sleep(0.02)
        yield settings.agent_url
        server.should_exit = True


@pytest.fixture
async def running(store: Store, redis_client: aioredis.Redis, keys: Keys, agent_url: str) -> AsyncIterator[Engine]:
    """An engine and a running dispatcher, with the agent registered in pool ``workbench``."""
    settings = Settings(agent_token=TOKEN, agent_auth="shared", visibility_timeout_s=3, personality="off")
    queue = TaskQueue(redis_client, keys)
    registry = Registry(redis_client, keys, settings)
    metrics = Metrics(CollectorRegistry())
    replica = Replica("wb-1", "workbench", "workbench", agent_url, 4, ["echo", "record", "fail"])
    await registry.register(replica)
    engine = Engine(settings, store, queue, registry, redis_client, keys, metrics, "dispatch-test")
    async with anyio.create_task_group() as tg:
        sessions = Sessions(tg)
        dispatcher = Dispatcher(settings, engine, store, queue, registry, sessions, metrics, redis_client, keys)
        tg.start_soon(dispatcher.run)
        yield engine
        await dispatcher.stop()
        await sessions.close_all()
        tg.cancel_scope.cancel()


async def submit(engine: Engine, *subtasks: dict[str, Any]) -> str:
    plan = Plan.model_validate({"subtasks": list(subtasks)})
    catalog = {"echo": {"workbench"}, "record": {"workbench"}}
    view = build_plan(plan, catalog, max_subtasks=10, max_depth=10, max_argument_bytes=10_000)
    task_id = uuid.uuid4()
    ready = await engine.store.create_task(task_id, None, "parallel", 0, plan.model_dump(), None, view.subtasks)
    await engine.enqueue(ready)
    return str(task_id)


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    with anyio.fail_after(timeout_s):
        while True:
            if value := await check():
                return value
            await anyio.sleep(0.02)


async def ended(engine: Engine, task_id: str) -> str:
    async def final() -> str | None:
        state = await engine.store.task_state(task_id)
        return None if state == TaskState.RUNNING else str(state)

    return await until(final)


async def test_a_plan_runs_on_the_agent_and_every_message_is_acked(running: Engine) -> None:
    task_id = await submit(
        running,
        {"id": "a", "tool": "echo", "arguments": {"value": 7}},
        {"id": "b", "tool": "echo", "arguments": {"value": {"$from": "a", "path": "value"}}, "depends_on": ["a"]},
    )
    assert await ended(running, task_id) == TaskState.SUCCEEDED
    view = await running.store.task_view(task_id)
    assert [s.result["value"] for s in view.subtasks] == [7, 7]
    assert view.message is not None
    assert await until(lambda: _empty(running))  # acked (and deleted) in the next batch


async def _empty(engine: Engine) -> bool:
    return await engine.queue.depth("workbench") == (0, 0.0)


async def test_the_call_carries_the_idempotency_key(running: Engine, tmp_path: Path) -> None:
    task_id = await submit(running, {"id": "rec", "tool": "record", "arguments": {"key": "k1"}})
    assert await ended(running, task_id) == TaskState.SUCCEEDED
    [line] = [json.loads(x) for x in (tmp_path / "memory" / "workbench-records.jsonl").read_text().splitlines()]
    assert line["key"] == "k1"
    assert (await running.store.task_view(task_id)).subtasks[0].result["times_seen"] == 1


async def test_the_dispatcher_rides_out_a_redis_that_lost_its_streams_and_groups(running: Engine) -> None:
    first = await submit(running, {"id": "a", "tool": "echo", "arguments": {"value": 1}})
    assert await ended(running, first) == TaskState.SUCCEEDED
    await running.reconcile()  # the epoch this process knows
    keys = running.keys
    pool_keys = [keys.stream("workbench"), keys.backlog("workbench"), keys.backlog_since("workbench")]
    await running.redis.delete(*pool_keys, keys.pools, keys.epoch)  # Redis restarted empty
    # a subtask Postgres calls queued, whose message died with Redis, and one pushed after the restart
    lost = await submit(running, {"id": "lost", "tool": "echo", "arguments": {"value": 2}})
    await running.redis.delete(*pool_keys)
    after = await submit(running, {"id": "after", "tool": "echo", "arguments": {"value": 3}})
    assert await ended(running, after) == TaskState.SUCCEEDED  # the read met NOGROUP and re-created the group
    await running.reconcile()  # what the sweep does every few seconds
    assert await ended(running, lost) == TaskState.SUCCEEDED
