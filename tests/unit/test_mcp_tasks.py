"""MCP Tasks' pieces without a server: status mapping, cursors, what is advertised, the tools/call rewrite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mcp_types as types
import pytest
from mcp import MCPError
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer

from reynolds import errors, mcp_tasks
from reynolds.models import TaskState, TaskView

pytestmark = pytest.mark.anyio
VIEW = TaskView(task_id="7d1c0f5e-1111-4222-8333-944445555666", state=TaskState.RUNNING, created_at=datetime.now(UTC))


def test_every_task_state_has_a_status() -> None:
    assert {s: mcp_tasks.task_of(VIEW.model_copy(update={"state": s}), None).status for s in TaskState} == {
        TaskState.RUNNING: "working",
        TaskState.SUCCEEDED: "completed",
        TaskState.FAILED: "failed",
        TaskState.CANCELLED: "cancelled",
    }


def test_cursors_are_offsets_and_nothing_else() -> None:
    assert mcp_tasks._offset(None) == 0
    assert mcp_tasks._offset("50") == 50
    for bad in ("-1", "1e3", "9" * 10, "", "٣"):
        with pytest.raises(errors.InvalidRequest):
            mcp_tasks._offset(bad)


async def test_the_capability_and_the_tool_execution_are_advertised() -> None:
    mcp = MCPServer("t")

    @mcp.tool()
    def orchestrate() -> str:
        return ""

    @mcp.tool()
    def other() -> str:
        return ""

    mcp_tasks.enable(mcp)
    tools = {t.name: t for t in await mcp.list_tools()}
    assert tools["orchestrate"].execution == types.ToolExecution(task_support="optional")
    assert tools["other"].execution is None
    assert mcp._lowlevel_server.get_capabilities().tasks == mcp_tasks.CAPABILITY
    assert mcp._lowlevel_server.get_capabilities(protocol_version="2026-07-28").tasks is None


def context(method: str, params: dict[str, Any], version: str = "2025-11-25") -> ServerRequestContext[Any, Any]:
    return ServerRequestContext(
        session=None, lifespan_context=None, protocol_version=version, method=method, params=params
    )  # type: ignore[arg-type]


async def run(params: dict[str, Any], answer: Any, version: str = "2025-11-25") -> tuple[Any, list[Any]]:
    seen: list[Any] = []

    async def call_next(ctx: ServerRequestContext[Any, Any]) -> Any:
        seen.append(ctx.params)
        return answer

    tasks = mcp_tasks.Tasks(None, None, None, 1000)  # type: ignore[arg-type]
    return await tasks.middleware(context("tools/call", params, version), call_next), seen


async def test_a_task_augmented_orchestrate_runs_without_waiting_and_answers_with_the_task() -> None:
    answer = types.CallToolResult(content=[], structured_content=VIEW.model_dump(mode="json"))
    params = {"name": "orchestrate", "arguments": {"plan": {}, "wait": True}, "task": {"ttl": 5}}
    result, seen = await run(params, answer)
    assert seen[0]["arguments"] == {"plan": {}, "wait": False}
    assert result["task"]["taskId"] == VIEW.task_id and result["task"]["status"] == "working"
    assert result["task"]["ttl"] == 1000 and result["content"][0]["type"] == "text"


@pytest.mark.parametrize(
    ("params", "version"),
    [
        ({"name": "orchestrate", "arguments": {}}, "2025-11-25"),  # no task asked for
        ({"name": "list_tasks", "arguments": {}, "task": {}}, "2025-11-25"),  # not a task tool
        ({"name": "orchestrate", "arguments": {}, "task": {}}, "2026-07-28"),  # no tasks in that era
        ({"name": "orchestrate", "arguments": "not a mapping", "task": {}}, "2025-11-25"),  # left to validation
        ({"name": "orchestrate", "arguments": {}, "task": "yes"}, "2025-11-25"),
        ({"name": ["orchestrate"], "arguments": {}, "task": {}}, "2025-11-25"),  # not a name at all
        ({"name": {"x": 1}, "arguments": {}, "task": {}}, "2025-11-25"),
    ],
)
async def test_anything_else_passes_through_untouched(params: dict[str, Any], version: str) -> None:
    answer = types.CallToolResult(content=[], structured_content=VIEW.model_dump(mode="json"))
    result, seen = await run(params, answer, version)
    assert result is answer and seen == [params]


async def test_a_refusal_before_a_task_exists_stays_the_tools_error() -> None:
    answer = types.CallToolResult(content=[types.TextContent(type="text", text="bad plan")], is_error=True)
    result, _ = await run({"name": "orchestrate", "arguments": {}, "task": {}}, answer)
    assert result is answer


async def test_errors_map_to_protocol_codes() -> None:
    async def refuse(ctx: Any, params: Any) -> Any:
        raise errors.NotFound("no task x")

    async def starting(ctx: Any, params: Any) -> Any:
        raise errors.ServiceUnavailable("Reynolds is starting")

    for fn, code in ((refuse, types.INVALID_PARAMS), (starting, types.INTERNAL_ERROR)):
        with pytest.raises(MCPError) as err:
            await mcp_tasks._answering(fn)(None, None)  # type: ignore[arg-type]
        assert err.value.error.code == code


def test_an_experiment_is_a_task_too() -> None:
    from reynolds.experiments.runner import ExperimentState
    from reynolds.experiments.tools import ExperimentView

    experiment = ExperimentView(
        experiment_id=VIEW.task_id,
        name="e",
        state=ExperimentState.FAILED,
        error="a run failed",
        created_at=VIEW.created_at,
        finished_at=None,
        runs_total=2,
        runs_done=1,
        runs=[],
        report=None,
        markdown=None,
    )
    task = mcp_tasks.task_of(experiment, None)
    assert (task.task_id, task.status, task.status_message) == (VIEW.task_id, "failed", "a run failed")
