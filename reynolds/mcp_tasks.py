"""MCP Tasks (protocol 2025-11-25, the revision the SDK implements them for): ``orchestrate`` as a task.

A handshake-era client that sends ``tools/call`` of ``orchestrate`` with a ``task`` field gets a task at once
(``CreateTaskResult``) instead of holding the request open, then polls:

- ``tasks/get``: the task's status (``working`` while it runs, then ``completed``, ``failed`` or ``cancelled``);
- ``tasks/result``: waits for the end and returns what ``orchestrate(wait=true)`` would have returned;
- ``tasks/list`` (your tasks, newest first, by cursor) and ``tasks/cancel``.

The MCP task is the Reynolds task: same id, state in Postgres, so it survives a restart and any Reynolds
process answers for it, with the tenancy of ``get_task``. Clients that do not ask keep today's behaviour.
The 2026-07-28 revision took tasks out of the core protocol; those clients use ``wait=false`` and
``get_task``.

The SDK has the models but neither advertises the ``tasks`` capability nor a tool's ``execution``, so
``enable`` adds both (the low-level server is reached, as ``client_log`` does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import MCPServer
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from reynolds import errors
from reynolds.auth import Principal, allowed, caller_in
from reynolds.models import TaskState, TaskSummary, TaskView

if TYPE_CHECKING:
    from reynolds.server import Holder
    from reynolds.service import Service

ERA = frozenset({"2025-11-25"})
TASK_TOOLS = frozenset({"orchestrate"})
POLL_INTERVAL_MS = 1000
PAGE = 50
RELATED = "io.modelcontextprotocol/related-task"
STATUS: dict[TaskState, types.TaskStatus] = {
    TaskState.RUNNING: "working",
    TaskState.SUCCEEDED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}
CAPABILITY = types.ServerTasksCapability(
    list=types.TasksListCapability(),
    cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call=types.TasksCallCapability())),
)

Handler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[HandlerResult]]
OwnTask = Callable[["Service", Principal, str], Awaitable[None]]


def task_of(view: TaskView | TaskSummary, ttl_ms: int | None) -> types.Task:
    return types.Task(
        task_id=view.task_id,
        status=STATUS[view.state],
        status_message=getattr(view, "message", None),
        created_at=view.created_at.isoformat(),
        last_updated_at=_last_update(view).isoformat(),
        ttl=ttl_ms,
        poll_interval=POLL_INTERVAL_MS,
    )


def _last_update(view: TaskView | TaskSummary) -> datetime:
    """The task's end, or the latest start or end of one of its subtasks, or its creation."""
    moments = [view.created_at, *([view.finished_at] if view.finished_at else [])]
    for sub in getattr(view, "subtasks", []):
        moments += [m for m in (sub.started_at, sub.finished_at) if m is not None]
    return max(moments)


def _caller(ctx: ServerRequestContext[Any, Any], scope: str) -> Principal:
    return allowed(caller_in(getattr(ctx.request, "scope", None) or {}), scope)


def _answering(fn: Handler) -> Handler:
    """A Reynolds error in a task method becomes a protocol error with its message: invalid params for what the
    request got wrong (which a client reads as "no such task"), internal error otherwise."""

    async def handler(ctx: ServerRequestContext[Any, Any], params: Any) -> HandlerResult:
        try:
            return await fn(ctx, params)
        except errors.InvalidRequest as err:  # a bad or unknown task id, a cursor, a missing scope
            raise MCPError(types.INVALID_PARAMS, str(err)) from err
        except errors.ReynoldsError as err:  # Reynolds starting or stopping: the task is not in doubt
            raise MCPError(types.INTERNAL_ERROR, str(err)) from err

    return handler


class Tasks(Extension):
    """The four task methods, and (``middleware``) what turns a task-augmented ``tools/call`` into a task.
    ``own_task`` and ``reply`` are the task tools' access check and answer (server.py)."""

    identifier = "dev.reynolds/tasks"

    def __init__(
        self, holder: Holder, own_task: OwnTask, reply: Callable[[TaskView], types.CallToolResult], ttl_ms: int | None
    ) -> None:
        self.holder, self.own_task, self.reply, self.ttl_ms = holder, own_task, reply, ttl_ms

    def methods(self) -> Sequence[MethodBinding]:
        return [
            MethodBinding("tasks/get", types.GetTaskRequestParams, _answering(self._get), ERA),
            MethodBinding("tasks/result", types.GetTaskPayloadRequestParams, _answering(self._result), ERA),
            MethodBinding("tasks/list", types.PaginatedRequestParams, _answering(self._list), ERA),
            MethodBinding("tasks/cancel", types.CancelTaskRequestParams, _answering(self._cancel), ERA),
        ]

    async def _view(self, ctx: ServerRequestContext[Any, Any], scope: str, task_id: str) -> TaskView:
        service = self.holder.get()
        await self.own_task(service, _caller(ctx, scope), task_id)
        return await service.engine.get_task(task_id)

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams) -> types.Task:
        return types.GetTaskResult(**dict(task_of(await self._view(ctx, "read", params.task_id), self.ttl_ms)))

    async def _result(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskPayloadRequestParams
    ) -> types.CallToolResult:
        service = self.holder.get()
        await self.own_task(service, _caller(ctx, "read"), params.task_id)
        result = self.reply(await service.engine.wait(params.task_id))
        return result.model_copy(update={"meta": {**(result.meta or {}), RELATED: {"taskId": params.task_id}}})

    async def _list(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListTasksResult:
        principal, offset = _caller(ctx, "read"), _offset(params.cursor if params else None)
        submitter = None if principal.allows("admin") else principal.name
        page = await self.holder.get().engine.list_tasks(None, PAGE, offset, submitter)
        after = offset + len(page.tasks)
        return types.ListTasksResult(
            tasks=[task_of(t, self.ttl_ms) for t in page.tasks], next_cursor=str(after) if after < page.total else None
        )

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
    ) -> types.CancelTaskResult:
        if (await self._view(ctx, "submit", params.task_id)).state != TaskState.RUNNING:
            raise errors.InvalidRequest(f"task {params.task_id} has already ended")
        view = await self.holder.get().engine.cancel(params.task_id)
        if view.state != TaskState.CANCELLED:  # it ended on its own in the meantime
            raise errors.InvalidRequest(f"task {params.task_id} has already ended")
        return types.CancelTaskResult(**dict(task_of(view, self.ttl_ms)))

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """A task-augmented call of a task tool runs as ``wait=false`` and answers with the task. This sits in
        the server's middleware rather than the tool-call interceptor: the SDK shapes a ``tools/call`` result
        into a ``CallToolResult`` below the middleware, which would drop the task."""
        params = ctx.params or {}
        arguments = params.get("arguments") or {}
        if (
            ctx.method != "tools/call"
            or ctx.protocol_version not in ERA
            or not isinstance(params.get("name"), str)
            or params["name"] not in TASK_TOOLS
            or not isinstance(params.get("task"), Mapping)
            or not isinstance(arguments, Mapping)
        ):
            return await call_next(ctx)
        result = await call_next(replace(ctx, params={**params, "arguments": {**arguments, "wait": False}}))
        data = result.model_dump(by_alias=True, mode="json") if isinstance(result, BaseModel) else result
        view = data.get("structuredContent") if isinstance(data, Mapping) and not data.get("isError") else None
        if not isinstance(view, Mapping):
            return result  # refused before a task existed (a bad plan, no scope): the tool's own error
        task = task_of(TaskView.model_validate(view), self.ttl_ms)
        created = types.CreateTaskResult(task=task).model_dump(by_alias=True, mode="json", exclude_none=True)
        # a text line too: clients whose SDK checks a tools/call answer as a CallToolResult (the Python SDK's
        # does) then accept it, and one that ignores tasks still learns the id
        line = f"task {task.task_id} {task.status}: poll tasks/get, collect with tasks/result"
        return {**created, "content": [{"type": "text", "text": line}]}


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 9:
        raise errors.InvalidRequest(f"{cursor[:40]!r} is not a cursor from tasks/list")
    return int(cursor)


def enable(mcp: MCPServer) -> None:
    """Advertise what the SDK leaves out: the ``tasks`` capability (handshake era) and ``orchestrate``'s
    ``execution.taskSupport``."""
    low = mcp._lowlevel_server
    capabilities, list_tools = low.get_capabilities, mcp.list_tools

    def with_tasks(*args: Any, **kwargs: Any) -> types.ServerCapabilities:
        caps = capabilities(*args, **kwargs)
        if kwargs.get("protocol_version") in MODERN_PROTOCOL_VERSIONS:
            return caps
        return caps.model_copy(update={"tasks": CAPABILITY})

    async def tools() -> list[types.Tool]:
        support = types.ToolExecution(task_support="optional")
        return [t.model_copy(update={"execution": support}) if t.name in TASK_TOOLS else t for t in await list_tools()]

    low.get_capabilities = with_tasks  # type: ignore[method-assign]
    mcp.list_tools = tools  # type: ignore[method-assign]
