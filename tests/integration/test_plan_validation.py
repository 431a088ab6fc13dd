"""A plan that cannot run is refused with a message naming the problem, and nothing is stored."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from reynolds import errors
from reynolds.client import call, connect
from tests.integration.cluster import Cluster
from tests.integration.conftest import run_plan, sql, start_workbench, wait_task

MAX_ARGUMENT_BYTES = 300
MAX_SUBTASKS = 5
MAX_RESULT_BYTES = 1024
MAX_RESOLVED_ARGUMENT_BYTES = 4096


def echo(sid: str, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "tool": "echo", "arguments": {"value": sid}, **extra}


INVALID_PLANS: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    (
        "cycle",
        [echo("a", depends_on=["c"]), echo("b", depends_on=["a"]), echo("c", depends_on=["b"]), echo("free")],
        ["cycle", "->"],
    ),
    ("self-cycle", [echo("a", depends_on=["a"])], ["'a' depends on itself"]),
    ("unknown tool", [echo("a"), {"id": "b", "tool": "no_such_tool"}], ["'b'", "no_such_tool"]),
    ("unknown pool", [{"id": "a", "tool": "echo", "pool": "nowhere"}], ["nowhere", "echo"]),
    ("unknown dependency", [echo("a", depends_on=["ghost"])], ["'a'", "'ghost'", "not in the plan"]),
    (
        "unknown reference",
        [{"id": "a", "tool": "echo", "arguments": {"value": {"$from": "phantom"}}}],
        ["'a'", "'phantom'"],
    ),
    ("duplicate id", [echo("a"), echo("b"), echo("a")], ["'a'", "more than once"]),
    (
        "oversized argument",
        [{"id": "big", "tool": "echo", "arguments": {"value": "x" * (MAX_ARGUMENT_BYTES + 1)}}],
        ["'big'", "max_argument_bytes", str(MAX_ARGUMENT_BYTES)],
    ),
    (
        "too many subtasks",
        [echo(f"s{i}") for i in range(MAX_SUBTASKS + 1)],
        ["max_subtasks", str(MAX_SUBTASKS), str(MAX_SUBTASKS + 1)],
    ),
    ("bad subtask id", [echo("has space")], ["plan.subtasks.0.id", "pattern"]),
    (
        "misspelled argument",
        [{"id": "a", "tool": "echo", "arguments": {"valeu": 1}}],
        ["subtask 'a': argument 'valeu' is not accepted by echo (did you mean 'value'? expected one of: value)"],
    ),
    (
        "argument of the wrong type",
        [{"id": "nap", "tool": "sleep", "arguments": {"seconds": "ten"}}],
        ["subtask 'nap': argument 'seconds' must be number, got \"ten\""],
    ),
    ("missing argument", [{"id": "r", "tool": "record"}], ["subtask 'r': argument 'key' is required by record"]),
    (
        "misspelled argument beside a reference",
        [echo("a"), {"id": "b", "tool": "echo", "arguments": {"vlue": {"$from": "a"}}}],
        ["subtask 'b': argument 'vlue' is not accepted by echo"],
    ),
    (
        "malformed reference path",
        [echo("a"), {"id": "b", "tool": "echo", "arguments": {"value": {"$from": "a", "path": "value.--1"}}}],
        ["subtask 'b'", "bad step '--1'"],
    ),
    ("NUL in an argument", [{"id": "n", "tool": "echo", "arguments": {"value": "a\x00b"}}], ["'value'", "NUL"]),
    (
        "fan-in past the resolved limit",
        [echo("a"), {"id": "join", "tool": "echo", "arguments": {"value": [{"$from": "a"}] * 5}}],
        ["'join' reads 5 $from values", "max_result_bytes", "max_resolved_argument_bytes"],
    ),
    ("empty plan", [], ["plan.subtasks", "at least 1"]),
]


def assert_names_cycle(message: str, depends: dict[str, str]) -> None:
    """The message ends with the cycle, in any rotation, each node depending on the next: "a -> c -> b -> a"."""
    nodes = message.rsplit(": ", 1)[-1].split(" -> ")
    assert nodes[0] == nodes[-1] and len(nodes) == len(depends) + 1, message
    for node, nxt in itertools.pairwise(nodes):
        assert depends[node] == nxt, message


@pytest.mark.anyio
async def test_invalid_plans_are_refused_and_store_nothing(reynolds_cluster: Cluster) -> None:
    start_workbench(
        reynolds_cluster,
        REYNOLDS_MAX_ARGUMENT_BYTES=str(MAX_ARGUMENT_BYTES),
        REYNOLDS_MAX_SUBTASKS=str(MAX_SUBTASKS),
        REYNOLDS_MAX_RESULT_BYTES=str(MAX_RESULT_BYTES),
        REYNOLDS_MAX_RESOLVED_ARGUMENT_BYTES=str(MAX_RESOLVED_ARGUMENT_BYTES),
    )
    async with reynolds_cluster.client() as c:
        for name, subtasks, expected in INVALID_PLANS:
            for tool in ("orchestrate", "plan_task"):
                with pytest.raises(errors.ReynoldsError) as refused:
                    await call(c, tool, {"plan": {"subtasks": subtasks}})
                message = str(refused.value)
                for fragment in expected:
                    assert fragment in message, f"{name} via {tool}: {fragment!r} not in {message!r}"
                if name == "cycle":
                    assert_names_cycle(message, {"a": "c", "c": "b", "b": "a"})
        listed = await call(c, "list_tasks", {})
        assert listed["total"] == 0 and listed["tasks"] == [], listed
        # the same plans within limits do run: the refusals above were about the plans, not the cluster
        ok = await run_plan(c, {"subtasks": [echo(f"s{i}") for i in range(MAX_SUBTASKS)]})
        assert ok["state"] == "succeeded", ok
    for table in ("tasks", "subtasks"):
        rows = await sql(reynolds_cluster, f"SELECT count(*) AS n FROM {table}")
        assert rows[0]["n"] == (1 if table == "tasks" else MAX_SUBTASKS), table


@pytest.mark.anyio
async def test_a_handoff_with_a_misspelled_argument_is_refused_and_adds_nothing(reynolds_cluster: Cluster) -> None:
    reynolds, _ = start_workbench(reynolds_cluster)
    plan = {"subtasks": [{"id": "parent", "tool": "sleep", "arguments": {"seconds": 3}}]}
    async with (
        reynolds_cluster.client() as c,
        connect(f"{reynolds.base_url}/agents/mcp", reynolds_cluster.agent_token) as agent_side,
    ):
        task_id = (await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"]
        child = {"id": "child", "tool": "echo", "arguments": {"vaule": "found"}}
        with pytest.raises(errors.ReynoldsError, match="subtask 'child': argument 'vaule' is not accepted by echo"):
            await call(agent_side, "handoff", {"task_id": task_id, "subtask_id": "parent", "subtasks": [child]})
        view = await wait_task(c, task_id)
    assert view["state"] == "succeeded" and [s["id"] for s in view["subtasks"]] == ["parent"], view
