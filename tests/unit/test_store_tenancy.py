"""The store's tenancy queries on a real Postgres: tasks carry their submitter, listing filters by it, the
purge deletes only tasks finished before the retention period (with their subtasks and events)."""

from __future__ import annotations

import uuid

import pytest

from reynolds.models import TaskState
from reynolds.store import Store
from tests.unit.test_store import node, planned

pytestmark = pytest.mark.anyio


async def submit_as(store: Store, submitter: str | None) -> str:
    task_id = uuid.uuid4()
    subtasks = [node("a")]
    await store.create_task(
        task_id, None, "parallel", 0, {"subtasks": subtasks}, None, planned(*subtasks), submitter=submitter
    )
    return str(task_id)


async def test_tasks_record_their_submitter_and_list_by_it(store: Store) -> None:
    alice, bob, legacy = await submit_as(store, "alice"), await submit_as(store, "bob"), await submit_as(store, None)
    assert await store.task_submitter(alice) == (True, "alice")
    assert await store.task_submitter(legacy) == (True, None)
    assert await store.task_submitter(str(uuid.uuid4())) == (False, None)
    mine = await store.list_tasks(None, 10, 0, "alice")
    assert ([t.task_id for t in mine.tasks], mine.total) == ([alice], 1)
    assert (await store.list_tasks("running", 10, 0, "nobody")).total == 0
    everyone = await store.list_tasks(None, 10, 0)
    assert {t.task_id for t in everyone.tasks} == {alice, bob, legacy}


async def test_purge_deletes_only_tasks_finished_before_retention(store: Store) -> None:
    old, recent, running = [await submit_as(store, "alice") for _ in range(3)]
    for task_id in (old, recent):
        await store.cancel_task(task_id, "done with it", TaskState.CANCELLED, lambda view: "done")
    await store.pool.execute("UPDATE tasks SET finished_at = now() - interval '31 days' WHERE id = $1", uuid.UUID(old))
    await store.pool.execute(
        "UPDATE tasks SET created_at = now() - interval '99 days' WHERE id = $1", uuid.UUID(running)
    )
    assert await store.purge_finished(30, batch=1) == 1
    assert [await store.task_exists(t) for t in (old, recent, running)] == [False, True, True]
    assert await store.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", uuid.UUID(old)) == 0
    assert await store.pool.fetchval("SELECT count(*) FROM events WHERE task_id = $1", uuid.UUID(old)) == 0
    assert await store.purge_finished(30) == 0
