"""Whatever a real agent answers — NUL bytes, undecodable bytes, 70 MB, deep nesting — Reynolds stores
something safe and bounded or fails the subtask once with a clear error; it never re-runs a call because
its output could not be stored, and a bad ``$from`` path at dispatch is one clear failure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster
from tests.integration.conftest import run_plan, sql, start_workbench, subtask, wait_task

MAX_RESULT_BYTES = 1024 * 1024


def emit(sid: str, kind: str, size: int = 1) -> dict[str, Any]:
    return {"id": sid, "tool": "emit", "arguments": {"kind": kind, "size": size}}


async def stored_bytes(c: Cluster, sid: str) -> int:
    rows = await sql(c, "SELECT octet_length(result::text) AS n FROM subtasks WHERE id = $1", sid)
    return rows[0]["n"]


@pytest.fixture
def cluster_with_cap(reynolds_cluster: Cluster) -> Cluster:
    start_workbench(reynolds_cluster, REYNOLDS_MAX_RESULT_BYTES=str(MAX_RESULT_BYTES))
    return reynolds_cluster


@pytest.mark.anyio
async def test_nul_bytes_in_output_are_stored_replaced_after_one_attempt(cluster_with_cap: Cluster) -> None:
    async with cluster_with_cap.client() as c:
        view = await run_plan(c, {"subtasks": [emit("scan", "nul", 3)]})
    scan = subtask(view, "scan")
    assert view["state"] == "succeeded" and scan["attempts"] == 1, view
    assert scan["result"]["value"] == "before\ufffdafter\ufffd" * 3
    assert "6 NUL or undecodable characters replaced" in scan["error"]


@pytest.mark.anyio
async def test_undecodable_output_ends_once_with_a_clear_outcome(cluster_with_cap: Cluster) -> None:
    async with cluster_with_cap.client() as c:
        view = await run_plan(c, {"subtasks": [emit("bytes", "non_utf8")]})
    out = subtask(view, "bytes")
    # lone surrogates have no JSON form, so the agent's SDK cannot send them: the call is a tool error, made once
    # (Reynolds' own handling of them, for servers that manage to send them, is in tests/unit/test_payload.py)
    assert out["state"] == "failed" and out["attempts"] == 1, out
    assert "emit" in out["error"], out


@pytest.mark.anyio
async def test_a_70_mb_result_is_kept_as_a_bounded_preview(cluster_with_cap: Cluster) -> None:
    size = 70 * 1024 * 1024
    async with cluster_with_cap.client() as c:
        task = await call(c, "orchestrate", {"plan": {"subtasks": [emit("big", "huge", size)]}, "wait": False})
        view = await run_plan(c, {"subtasks": [{"id": "after", "tool": "echo", "arguments": {"value": 1}}]})
        assert view["state"] == "succeeded"
        done = await wait_task(c, task["task_id"], timeout_s=120)
        raw = json.dumps(done)
    big = subtask(done, "big")
    assert done["state"] == "succeeded" and big["attempts"] == 1, big["error"]
    assert big["result"]["$truncated"]["size_bytes"] > size
    assert big["result"]["$truncated"]["limit_bytes"] == MAX_RESULT_BYTES
    assert "max_result_bytes" in big["error"]
    assert await stored_bytes(cluster_with_cap, "big") < MAX_RESULT_BYTES
    assert len(raw) < MAX_RESULT_BYTES  # get_task stays bounded too


@pytest.mark.anyio
async def test_deeply_nested_output_is_stored_after_one_attempt(cluster_with_cap: Cluster) -> None:
    async with cluster_with_cap.client() as c:
        view = await run_plan(c, {"subtasks": [emit("deep", "deep", 150)]})
    deep = subtask(view, "deep")
    assert deep["state"] == "succeeded" and deep["attempts"] == 1, deep
    assert "nested deeper than 64 levels" in deep["error"]
    assert await stored_bytes(cluster_with_cap, "deep") < 2000


@pytest.mark.anyio
async def test_a_bad_path_at_dispatch_fails_once_naming_the_path_and_what_was_there(
    cluster_with_cap: Cluster,
) -> None:
    plan = {
        "subtasks": [
            {"id": "src", "tool": "echo", "arguments": {"value": [1, 2]}},
            {"id": "far", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.5"}}},
            {"id": "key", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.first"}}},
            {"id": "into", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "agent_id.x"}}},
            {"id": "ok", "tool": "echo", "arguments": {"value": {"$from": "src", "path": "value.-1"}}},
        ]
    }
    async with cluster_with_cap.client() as c:
        view = await run_plan(c, plan)
    assert subtask(view, "ok")["result"]["value"] == 2
    for sid, path, step, found in [
        ("far", "value.5", "5", "a list of 2 items"),
        ("key", "value.first", "first", "a list of 2 items"),
        ("into", "agent_id.x", "x", "a string"),
    ]:
        failed = subtask(view, sid)
        assert failed["state"] == "failed" and failed["attempts"] == 1, failed
        assert f"has no '{path}' (stopped at '{step}', where there is {found})" in failed["error"], failed


@pytest.mark.anyio
async def test_reading_a_truncated_result_fails_the_reader_once(cluster_with_cap: Cluster) -> None:
    plan = {
        "subtasks": [
            emit("big", "huge", 2 * MAX_RESULT_BYTES),
            {"id": "reader", "tool": "echo", "arguments": {"value": {"$from": "big", "path": "value"}}},
        ]
    }
    async with cluster_with_cap.client() as c:
        view = await run_plan(c, plan)
    reader = subtask(view, "reader")
    assert subtask(view, "big")["state"] == "succeeded"
    assert reader["state"] == "failed" and reader["attempts"] == 1, reader
    assert "only a preview was kept" in reader["error"]


@pytest.mark.anyio
async def test_a_fan_in_within_the_worst_case_runs_once_with_every_value_filled_in(cluster_with_cap: Cluster) -> None:
    sources = [{"id": f"s{i}", "tool": "echo", "arguments": {"value": i}} for i in range(3)]
    join = {
        "id": "join",
        "tool": "echo",
        "arguments": {"value": [{"$from": f"s{i}", "path": "value"} for i in range(3)]},
    }
    async with cluster_with_cap.client() as c:
        view = await run_plan(c, {"subtasks": [*sources, join]})
    assert view["state"] == "succeeded", view
    assert subtask(view, "join")["result"]["value"] == [0, 1, 2]
    assert subtask(view, "join")["attempts"] == 1
