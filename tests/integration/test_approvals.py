"""Human approval on a real cluster: a subtask marked requires_approval waits in Postgres until its submitter
approves it (asked through elicitation when the client can, in both protocol eras) or rejects it (its
dependents skipped); decisions are events with who made them, outlive a restart, and time out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from reynolds.client import call
from reynolds.errors import ReynoldsError
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import sdk_client, start_workbench, wait_task, wait_until

pytestmark = pytest.mark.anyio
PLAN = {
    "subtasks": [
        {"id": "look", "tool": "echo", "arguments": {"value": 1}},
        {
            "id": "change",
            "tool": "record",
            "arguments": {"key": "k"},
            "depends_on": ["look"],
            "requires_approval": True,
        },
        {"id": "after", "tool": "echo", "arguments": {"value": 2}, "depends_on": ["change"]},
    ]
}


ALICE, BOB, AUDITOR = "tok-alice-0001", "tok-bob-0002", "tok-read-0003"


def start(c: Cluster, **settings: str) -> tuple[Proc, list[Proc]]:
    tokens = c.workdir / "client_tokens"
    tokens.write_text(f"{ALICE} alice\n{BOB} bob\n{AUDITOR} auditor read\n")
    return start_workbench(c, REYNOLDS_CLIENT_TOKENS_FILE=str(tokens), **settings)


def by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in view["subtasks"]}


async def events(c: Client, task_id: str) -> list[dict[str, Any]]:
    return (await call(c, "get_task", {"task_id": task_id, "include_events": True}))["events"]


async def test_orchestrate_stops_waiting_and_approval_lets_it_run(reynolds_cluster: Cluster) -> None:
    reynolds, agents = start(reynolds_cluster)
    async with reynolds_cluster.client(reynolds, token=ALICE) as c:
        view = await call(c, "orchestrate", {"plan": PLAN, "wait": True})
        assert view["state"] == "running" and "approve_subtask" in view["message"]
        steps = by_id(view)
        assert steps["look"]["state"] == "succeeded"
        assert steps["change"]["state"] == "awaiting_approval" and steps["change"]["requires_approval"]
        assert steps["after"]["state"] == "pending"
        assert reynolds_cluster.records(agents[0]) == []  # nothing ran before the decision

        await call(c, "approve_subtask", {"task_id": view["task_id"], "subtask_id": "change"})
        done = await wait_task(c, view["task_id"])
        assert done["state"] == "succeeded", done
        assert by_id(done)["change"]["decided_by"] == "alice"
        approved = [e for e in await events(c, view["task_id"]) if e["kind"] == "subtask_approved"]
        assert [(e["subtask_id"], e["data"]["by"]) for e in approved] == [("change", "alice")]
        with pytest.raises(ReynoldsError, match="not awaiting approval"):  # a second decision finds nothing
            await call(c, "reject_subtask", {"task_id": view["task_id"], "subtask_id": "change"})


async def test_rejection_skips_the_dependents_and_the_task_fails(reynolds_cluster: Cluster) -> None:
    reynolds, agents = start(reynolds_cluster)
    async with reynolds_cluster.client(reynolds, token=ALICE) as c:
        task_id = (await call(c, "orchestrate", {"plan": PLAN, "wait": False}))["task_id"]
        await wait_task(c, task_id, states=frozenset({"running"}))

        async def awaiting() -> bool:
            view = await call(c, "get_task", {"task_id": task_id})
            return by_id(view)["change"]["state"] == "awaiting_approval"

        await wait_until(awaiting, 20, "the step to await approval")
        view = await call(c, "reject_subtask", {"task_id": task_id, "subtask_id": "change", "reason": "not today"})
        assert view["state"] == "failed"
        steps = by_id(view)
        assert steps["change"]["state"] == "skipped" and steps["change"]["error"] == "rejected by alice: not today"
        assert steps["after"]["state"] == "skipped"
        rejected = [e for e in await events(c, task_id) if e["kind"] == "subtask_rejected"]
        assert rejected[0]["data"] == {"by": "alice", "reason": "not today"}
    assert reynolds_cluster.records(agents[0]) == []


@asynccontextmanager
async def eliciting(proc: Proc, token: str, mode: str, answer: dict[str, Any] | None) -> AsyncIterator[Client]:
    """A client whose user answers every question with ``answer`` (None: declines)."""
    asked: list[str] = []

    async def elicit(ctx: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        if answer is None:
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content=answer)

    async with sdk_client(proc, token, mode=mode, elicitation_callback=elicit) as client:
        client.asked = asked  # type: ignore[attr-defined]
        yield client


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # 2025-11-25 request, 2026-07-28 input-required round trip
async def test_the_user_is_asked_through_elicitation(reynolds_cluster: Cluster, mode: str) -> None:
    reynolds, _ = start(reynolds_cluster)
    token = ALICE
    async with eliciting(reynolds, token, mode, None) as c:
        view = await call(c, "orchestrate", {"plan": PLAN, "wait": True})
        task_id = view["task_id"]
        with pytest.raises(ReynoldsError, match="elicitation was decline"):
            await call(c, "approve_subtask", {"task_id": task_id, "subtask_id": "change"})
        question = c.asked[0]  # type: ignore[attr-defined]
        assert "'change'" in question and "record" in question and '"key": "k"' in question
        assert by_id(await call(c, "get_task", {"task_id": task_id}))["change"]["state"] == "awaiting_approval"
    async with eliciting(reynolds, token, mode, {"approve": False}) as c:
        with pytest.raises(ReynoldsError, match="the person said no"):
            await call(c, "approve_subtask", {"task_id": task_id, "subtask_id": "change"})
    async with eliciting(reynolds, token, mode, {"approve": True}) as c:
        await call(c, "approve_subtask", {"task_id": task_id, "subtask_id": "change"})
        done = await wait_task(c, task_id)
        assert done["state"] == "succeeded"
        assert by_id(done)["change"]["decided_by"] == "alice (confirmed by the user)"


async def test_a_wait_for_approval_outlives_a_restart(reynolds_cluster: Cluster) -> None:
    first, _ = start(reynolds_cluster)
    async with reynolds_cluster.client(first, token=ALICE) as c:
        view = await call(c, "orchestrate", {"plan": PLAN, "wait": True})
    first.stop()
    second = reynolds_cluster.start_reynolds(
        REYNOLDS_CLIENT_TOKENS_FILE=str(reynolds_cluster.workdir / "client_tokens")
    )
    reynolds_cluster.start_agent("workbench", reynolds=second)
    reynolds_cluster.wait_registered(["workbench-1"])
    async with reynolds_cluster.client(second, token=ALICE) as c:
        assert by_id(await call(c, "get_task", {"task_id": view["task_id"]}))["change"]["state"] == "awaiting_approval"
        await call(c, "approve_subtask", {"task_id": view["task_id"], "subtask_id": "change"})
        assert (await wait_task(c, view["task_id"], timeout_s=60))["state"] == "succeeded"


async def test_nobody_deciding_in_time_is_a_rejection(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start(reynolds_cluster, REYNOLDS_APPROVAL_TIMEOUT_S="1")
    async with reynolds_cluster.client(reynolds, token=ALICE) as c:
        view = await call(c, "orchestrate", {"plan": PLAN, "wait": True})
        done = await wait_task(c, view["task_id"], timeout_s=30)
        assert done["state"] == "failed"
        assert by_id(done)["change"]["error"] == "rejected by reynolds: no decision within 1 s"
        assert by_id(done)["after"]["state"] == "skipped"


async def test_only_the_submitter_decides_and_bad_requests_are_refused(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start(reynolds_cluster)
    async with reynolds_cluster.client(reynolds, token=ALICE) as c:
        view = await call(c, "orchestrate", {"plan": PLAN, "wait": True})
        task_id = view["task_id"]
        for subtask_id in ("look", "nope", "x" * 200):  # done already, not in the plan, anything
            with pytest.raises(ReynoldsError, match="not awaiting approval"):
                await call(c, "approve_subtask", {"task_id": task_id, "subtask_id": subtask_id})
        with pytest.raises(ReynoldsError):
            await call(c, "approve_subtask", {"task_id": task_id, "subtask_id": "x" * 201})
    async with reynolds_cluster.client(reynolds, token=BOB) as c:
        for tool in ("approve_subtask", "reject_subtask"):
            with pytest.raises(ReynoldsError, match="no task"):
                await call(c, tool, {"task_id": task_id, "subtask_id": "change"})
    async with reynolds_cluster.client(reynolds, token=AUDITOR) as c:
        with pytest.raises(ReynoldsError, match="submit"):
            await call(c, "approve_subtask", {"task_id": task_id, "subtask_id": "change"})
    async with reynolds_cluster.client(reynolds, token=ALICE) as c:
        assert by_id(await call(c, "get_task", {"task_id": task_id}))["change"]["state"] == "awaiting_approval"
        assert (await call(c, "cancel_task", {"task_id": task_id}))["state"] == "cancelled"
