"""Client tokens are tenants: each sees and cancels only its own tasks, an admin token sees all, scopes
limit what a token may do, another tenant's task reads exactly like a missing one, and finished tasks are
purged after the retention period while running ones stay."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mcp import MCPError

from reynolds import errors
from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import run_plan, sql, start_workbench, wait_task, wait_until

TOKENS = {"alice": "tok-alice-0001", "bob": "tok-bob-0002", "ops": "tok-ops-0003", "auditor": "tok-audit-0004"}
SLEEP = {"subtasks": [{"id": "nap", "tool": "sleep", "arguments": {"seconds": 30}}]}
ECHO = {"subtasks": [{"id": "say", "tool": "echo", "arguments": {"value": "hi"}}]}


def start(c: Cluster, **settings: str) -> Proc:
    tokens = c.workdir / "client_tokens"
    tokens.write_text(
        f"{TOKENS['alice']} alice\n{TOKENS['bob']} bob\n{TOKENS['ops']} ops admin\n{TOKENS['auditor']} auditor read\n"
    )
    reynolds, _ = start_workbench(c, REYNOLDS_CLIENT_TOKENS_FILE=str(tokens), **settings)
    return reynolds


async def as_(c: Cluster, who: str, tool: str, arguments: dict[str, Any]) -> Any:
    async with c.client(token=TOKENS[who]) as client:
        return await call(client, tool, arguments)


async def refused(c: Cluster, who: str, tool: str, arguments: dict[str, Any]) -> str:
    async with c.client(token=TOKENS[who]) as client:
        with pytest.raises(errors.ReynoldsError) as err:
            await call(client, tool, arguments)
    return str(err.value)


@pytest.mark.anyio
async def test_each_token_sees_and_cancels_only_its_own_tasks_and_admin_sees_all(reynolds_cluster: Cluster) -> None:
    start(reynolds_cluster)
    c = reynolds_cluster
    mine = (await as_(c, "alice", "orchestrate", {"plan": SLEEP, "wait": False}))["task_id"]
    theirs = (await as_(c, "bob", "orchestrate", {"plan": SLEEP, "wait": False}))["task_id"]

    def ids(listing: dict[str, Any]) -> set[str]:
        return {t["task_id"] for t in listing["tasks"]}

    seen = {who: ids(await as_(c, who, "list_tasks", {})) for who in ("alice", "bob", "ops")}
    assert seen == {"alice": {mine}, "bob": {theirs}, "ops": {mine, theirs}}

    missing = str(uuid.uuid4())
    for tool in ("get_task", "cancel_task"):
        answer = await refused(c, "bob", tool, {"task_id": mine})
        assert answer == f"no task {mine}", answer  # the same words as for a task that does not exist
        assert await refused(c, "bob", tool, {"task_id": missing}) == f"no task {missing}"
    answers = []
    async with c.client(token=TOKENS["bob"]) as client:
        for task_id in (mine, missing):
            with pytest.raises(MCPError) as err:
                await client.read_resource(f"reynolds://tasks/{task_id}")
            answers.append(str(err.value).replace(task_id, "<id>"))
    assert answers[0] == answers[1], answers
    async with c.client(token=TOKENS["alice"]) as client:
        own = await client.read_resource(f"reynolds://tasks/{mine}")
    assert f'"task_id":"{mine}"' in own.contents[0].text
    assert (await as_(c, "alice", "get_task", {"task_id": mine}))["state"] == "running"

    assert (await as_(c, "ops", "get_task", {"task_id": theirs}))["task_id"] == theirs
    assert (await as_(c, "ops", "cancel_task", {"task_id": theirs}))["state"] == "cancelled"
    assert (await as_(c, "alice", "cancel_task", {"task_id": mine}))["state"] == "cancelled"
    rows = await sql(c, "SELECT submitter, state FROM tasks ORDER BY created_at")
    assert [(r["submitter"], r["state"]) for r in rows] == [("alice", "cancelled"), ("bob", "cancelled")]


@pytest.mark.anyio
async def test_scopes_limit_what_a_token_may_do(reynolds_cluster: Cluster) -> None:
    start(reynolds_cluster)
    c = reynolds_cluster
    assert "lacks the 'submit' scope" in await refused(c, "auditor", "orchestrate", {"plan": ECHO})
    assert (await as_(c, "auditor", "list_tasks", {}))["total"] == 0  # nothing was stored
    assert [p["pool"] for p in (await as_(c, "auditor", "list_agents", {}))["pools"]] == ["workbench"]
    for who in ("alice", "auditor"):
        answer = await refused(c, who, "scale_pool", {"pool": "workbench", "replicas": 3})
        assert "lacks the 'admin' scope" in answer, answer
    async with c.client(token=TOKENS["alice"]) as client:
        task = await run_plan(client, ECHO)
    assert task["state"] == "succeeded", task


@pytest.mark.anyio
async def test_finished_tasks_are_purged_after_retention_and_running_ones_stay(reynolds_cluster: Cluster) -> None:
    start(reynolds_cluster, REYNOLDS_PURGE_INTERVAL_S="0.5", REYNOLDS_RETENTION_DAYS="30")
    c = reynolds_cluster
    async with c.client(token=TOKENS["alice"]) as client:
        old = (await run_plan(client, ECHO))["task_id"]
        recent = (await run_plan(client, ECHO))["task_id"]
        running = (await call(client, "orchestrate", {"plan": SLEEP, "wait": False}))["task_id"]
        await wait_task(client, running, 10, frozenset({"running"}))
    await sql(c, "UPDATE tasks SET finished_at = now() - interval '31 days' WHERE id = $1", uuid.UUID(old))
    await sql(c, "UPDATE tasks SET created_at = now() - interval '90 days' WHERE id = $1", uuid.UUID(running))

    async def old_gone() -> bool:
        return not await sql(c, "SELECT 1 FROM tasks WHERE id = $1", uuid.UUID(old))

    await wait_until(old_gone, 30, "the expired task to be purged")
    assert await sql(c, "SELECT 1 FROM subtasks WHERE task_id = $1", uuid.UUID(old)) == []
    assert await sql(c, "SELECT 1 FROM events WHERE task_id = $1", uuid.UUID(old)) == []
    kept = await sql(c, "SELECT id::text, state FROM tasks ORDER BY created_at")
    assert {(r["id"], r["state"]) for r in kept} == {(recent, "succeeded"), (running, "running")}
