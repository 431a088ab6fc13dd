"""The engine against real Postgres and Redis: each attempt's raw outcome is settled by one owner (success
releases dependents and finishes the task with its closing message in the same write; transport errors retry
with backoff until the attempts run out, then dead-letter; a JSON-RPC error and a tool error fail at once),
and what Redis lost is queued again. Each test has its own schema and key prefix."""

from __future__ import annotations

import json
import uuid
from typing import Any

import mcp_types as types
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from reynolds import errors, retry
from reynolds.config import Settings
from reynolds.engine import Engine
from reynolds.keys import Keys
from reynolds.metrics import Metrics
from reynolds.models import Attempt, Claim, Plan, SubtaskState, TaskState
from reynolds.plan import build_plan
from reynolds.queue import TaskQueue
from reynolds.registry import Registry
from reynolds.store import Store

pytestmark = pytest.mark.anyio
OWNER = "engine-test"


@pytest.fixture
def engine(store: Store, redis_client: aioredis.Redis, keys: Keys) -> Engine:
    settings = Settings(max_attempts=2, backoff_base_s=0.1, backoff_max_s=0.2, personality="off")
    queue = TaskQueue(redis_client, keys)
    registry = Registry(redis_client, keys, settings)
    return Engine(settings, store, queue, registry, redis_client, keys, Metrics(CollectorRegistry()), OWNER)


async def submit(engine: Engine, *subtasks: dict[str, Any]) -> str:
    plan = Plan.model_validate({"subtasks": list(subtasks)})
    view = build_plan(plan, {"echo": {"workbench"}}, max_subtasks=10, max_depth=10, max_argument_bytes=10_000)
    task_id = uuid.uuid4()
    ready = await engine.store.create_task(task_id, None, "parallel", 0, plan.model_dump(), None, view.subtasks)
    await engine.enqueue(ready)
    return str(task_id)


async def claim(engine: Engine, task_id: str, sid: str) -> Claim:
    got, why = await engine.store.claim(task_id, sid, OWNER, 30)
    assert got is not None, why
    return got


def text_result(text: str, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


async def state_of(engine: Engine, task_id: str, sid: str) -> tuple[str, int, str | None]:
    row = await engine.store.pool.fetchrow(
        "SELECT state, attempts, error FROM subtasks WHERE task_id = $1 AND id = $2", uuid.UUID(task_id), sid
    )
    return row["state"], row["attempts"], row["error"]


async def stream_ids(engine: Engine) -> list[str]:
    """Subtask ids of every message the pool has (stream and backlog), without delivering any."""
    keys = engine.keys
    entries = await engine.redis.xrange(keys.stream("workbench"))
    backlog = await engine.redis.zrange(keys.backlog("workbench"), 0, -1)
    return [fields[b"subtask_id"].decode() for _id, fields in entries] + [
        json.loads(member)["subtask_id"] for member in backlog
    ]


async def test_success_releases_dependents_and_the_last_one_ends_the_task_with_its_message(engine: Engine) -> None:
    task_id = await submit(engine, {"id": "a", "tool": "echo"}, {"id": "b", "tool": "echo", "depends_on": ["a"]})
    assert await stream_ids(engine) == ["a"]
    await engine.settle(Attempt(await claim(engine, task_id, "a"), 1.0, 0, "agent-1", result=text_result("hi")))
    assert await stream_ids(engine) == ["a", "b"]  # b handed to Redis (a's message is acked by the dispatcher)
    structured = types.CallToolResult(content=[], structured_content={"n": 2})
    await engine.settle(Attempt(await claim(engine, task_id, "b"), 1.0, 0, "agent-1", result=structured))
    view = await engine.store.task_view(task_id)
    assert view.state == TaskState.SUCCEEDED
    assert [s.result for s in view.subtasks] == [{"text": "hi"}, {"n": 2}]
    assert view.message is not None and view.message.startswith(f"Task {task_id} succeeded")


async def test_a_transport_error_retries_with_backoff_then_gives_up_into_the_dead_letters(engine: Engine) -> None:
    task_id = await submit(engine, {"id": "a", "tool": "echo"})
    broken = errors.TransportError("connection reset")
    await engine.settle(Attempt(await claim(engine, task_id, "a"), 1.0, 0, "agent-1", error=broken))
    assert await state_of(engine, task_id, "a") == (SubtaskState.QUEUED, 1, "connection reset")
    assert await engine.redis.zcard(engine.keys.delayed) == 1  # waiting out its backoff
    # the second attempt (the setting allows two) fails the same way: no more retries
    await engine.store.pool.execute("UPDATE subtasks SET not_before = NULL")
    await engine.settle(Attempt(await claim(engine, task_id, "a"), 1.0, 0, "agent-2", error=broken))
    state, attempts, error = await state_of(engine, task_id, "a")
    assert (state, attempts) == (SubtaskState.FAILED, 2) and "gave up after 2 attempts" in (error or "")
    [(_id, fields)] = await engine.redis.xrange(engine.keys.dead)
    assert fields[b"subtask_id"] == b"a" and fields[b"attempts"] == b"2"
    assert (await engine.store.task_view(task_id)).state == TaskState.FAILED


async def test_a_json_rpc_error_fails_at_once_and_is_not_the_replicas_fault(engine: Engine) -> None:
    task_id = await submit(engine, {"id": "a", "tool": "echo"}, {"id": "b", "tool": "echo", "depends_on": ["a"]})
    wrong = errors.RemoteError("Invalid params", code=-32602)
    await engine.settle(Attempt(await claim(engine, task_id, "a"), 1.0, 0, "agent-1", error=wrong))
    assert await state_of(engine, task_id, "a") == (SubtaskState.FAILED, 1, "Invalid params")
    assert (await state_of(engine, task_id, "b"))[0] == SubtaskState.SKIPPED
    assert not retry.replica_at_fault(wrong) and retry.replica_at_fault(errors.CallTimeout("slow"))
    assert await engine.redis.xlen(engine.keys.dead) == 0


async def test_a_tool_error_fails_unless_the_plan_marks_it_retryable(engine: Engine) -> None:
    task_id = await submit(engine, {"id": "hard", "tool": "echo"}, {"id": "soft", "tool": "echo", "retryable": True})
    boom = text_result("boom", is_error=True)
    await engine.settle(Attempt(await claim(engine, task_id, "hard"), 1.0, 0, "agent-1", result=boom))
    await engine.settle(Attempt(await claim(engine, task_id, "soft"), 1.0, 0, "agent-1", result=boom))
    assert await state_of(engine, task_id, "hard") == (SubtaskState.FAILED, 1, "boom")
    assert await state_of(engine, task_id, "soft") == (SubtaskState.QUEUED, 1, "boom")


async def test_everything_queued_is_queued_again_when_redis_lost_its_data(engine: Engine) -> None:
    task_id = await submit(engine, {"id": "a", "tool": "echo"}, {"id": "b", "tool": "echo"})
    await engine.reconcile()  # the first look at this Redis starts its epoch; the messages are still there
    assert sorted(await stream_ids(engine)) == ["a", "a", "b", "b"]  # a first epoch re-queues (harmlessly)
    await engine.redis.delete(*_pool_keys(engine), engine.keys.epoch)  # Redis restarted empty
    await engine.reconcile()
    assert sorted(await stream_ids(engine)) == ["a", "b"]
    await engine.reconcile()  # nothing lost since: nothing more
    assert sorted(await stream_ids(engine)) == ["a", "b"]
    assert {(await state_of(engine, task_id, s))[0] for s in "ab"} == {SubtaskState.QUEUED}


async def test_a_running_subtask_whose_lease_ran_out_long_ago_is_queued_again(engine: Engine) -> None:
    task_id = await submit(engine, {"id": "a", "tool": "echo"})
    await engine.reconcile()
    await engine.redis.delete(*_pool_keys(engine))
    await claim(engine, task_id, "a")
    await engine.reconcile()
    assert await stream_ids(engine) == []  # its lease is live: its holder is running it
    await engine.store.pool.execute("UPDATE subtasks SET lease_until = now() - interval '1 hour'")
    await engine.reconcile()
    assert await stream_ids(engine) == ["a"]


async def test_a_task_without_timeout_gets_the_default_deadline(engine: Engine) -> None:
    engine.registry.catalog = _catalog  # type: ignore[method-assign]  # no agents registered in a unit test
    task_id, _ = await engine.submit(Plan.model_validate({"subtasks": [{"id": "a", "tool": "echo"}]}))
    seconds = await engine.store.pool.fetchval(
        "SELECT extract(epoch FROM deadline - created_at) FROM tasks WHERE id = $1", uuid.UUID(task_id)
    )
    assert abs(float(seconds) - engine.settings.default_task_timeout_s) < 60


def _pool_keys(engine: Engine) -> list[str]:
    keys = engine.keys
    return [keys.stream("workbench"), keys.backlog("workbench"), keys.backlog_since("workbench")]


async def _catalog() -> dict[str, set[str]]:
    return {"echo": {"workbench"}}
