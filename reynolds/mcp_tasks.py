"""MCP Tasks (protocol 2025-11-25, the revision the SDK implements them for): ``orchestrate`` and
``run_experiment`` as tasks.

A handshake-era client that sends ``tools/call`` of either with a ``task`` field gets a task at once
(``CreateTaskResult``) instead of holding the request open, then polls:

- ``tasks/get``: the status (``working`` while it runs, then ``completed``, ``failed`` or ``cancelled``);
- ``tasks/result``: waits for the end and returns what the tool would have returned with ``wait=true``;
- ``tasks/list`` (your tasks and experiments, newest first, by cursor) and ``tasks/cancel``.

The MCP task is the Reynolds task or experiment: same id, state in Postgres, so it survives a restart and any
Reynolds process answers for it, with the tenancy of ``get_task`` / ``get_experiment``. Clients that do not
ask keep today's behaviour. The 2026-07-28 revision took tasks out of the core protocol; those clients use
``wait=false`` and ``get_task`` / ``get_experiment``.

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
from reynolds.experiments import runner as experiment_runner
from reynolds.experiments import tools as experiments
from reynolds.experiments.tools import ExperimentSummary, ExperimentView
from reynolds.models import TaskState, TaskSummary, TaskView

if TYPE_CHECKING:
    from reynolds.server import Holder
    from reynolds.service import Service

ERA = frozenset({"2025-11-25"})
TASK_TOOLS: dict[str, type[TaskView | ExperimentView]] = {  # the tools that can be tasks, and what they answer
    "orchestrate": TaskView,
    "run_experiment": ExperimentView,
}
POLL_INTERVAL_MS = 1000
PAGE = 50
MAX_OFFSET = 10_000  # tasks/list pages deeper than this are refused: use list_tasks/list_experiments
RELATED = "io.modelcontextprotocol/related-task"
STATUS: dict[str, types.TaskStatus] = {  # a task's or an experiment's state (the same four words)
    TaskState.RUNNING: "working",
    TaskState.SUCCEEDED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}
Tracked = TaskView | TaskSummary | ExperimentView | ExperimentSummary
CAPABILITY = types.ServerTasksCapability(
    list=types.TasksListCapability(),
    cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call=types.TasksCallCapability())),
)

Handler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[HandlerResult]]
OwnTask = Callable[["Service", Principal, str], Awaitable[None]]


def task_of(view: Tracked, ttl_ms: int | None) -> types.Task:
    return types.Task(
        task_id=view.task_id if isinstance(view, TaskView | TaskSummary) else view.experiment_id,
        status=STATUS[view.state],
        status_message=getattr(view, "message", None) or getattr(view, "error", None),
        created_at=view.created_at.isoformat(),
        last_updated_at=_last_update(view).isoformat(),
        ttl=ttl_ms,
        poll_interval=POLL_INTERVAL_MS,
    )


def _last_update(view: Tracked) -> datetime:
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
        self, holder: Holder, own_task: OwnTask, reply: Callable[[BaseModel], types.CallToolResult], ttl_ms: int | None
    ) -> None:
        self.holder, self.own_task, self.reply, self.ttl_ms = holder, own_task, reply, ttl_ms

    def methods(self) -> Sequence[MethodBinding]:
        return [
            MethodBinding("tasks/get", types.GetTaskRequestParams, _answering(self._get), ERA),
            MethodBinding("tasks/result", types.GetTaskPayloadRequestParams, _answering(self._result), ERA),
            MethodBinding("tasks/list", types.PaginatedRequestParams, _answering(self._list), ERA),
            MethodBinding("tasks/cancel", types.CancelTaskRequestParams, _answering(self._cancel), ERA),
        ]

    async def _find(self, ctx: ServerRequestContext[Any, Any], scope: str, task_id: str) -> TaskView | ExperimentView:
        """The Reynolds task or the experiment with this id, if the caller may see it (NotFound otherwise)."""
        service, principal = self.holder.get(), _caller(ctx, scope)
        try:
            await self.own_task(service, principal, task_id)
            return await service.engine.get_task(task_id)
        except errors.NotFound:
            try:
                return await experiments.view(service.store.pool, task_id, principal)
            except errors.NotFound:
                raise errors.NotFound(f"no task {task_id}") from None

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams) -> types.Task:
        return types.GetTaskResult(**dict(task_of(await self._find(ctx, "read", params.task_id), self.ttl_ms)))

    async def _result(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskPayloadRequestParams
    ) -> types.CallToolResult:
        """What the tool would have answered with wait=true, once the task (or experiment) has ended."""
        found, service = await self._find(ctx, "read", params.task_id), self.holder.get()
        moved = self._status_notes(ctx, found)
        if isinstance(found, TaskView):
            ended: TaskView | ExperimentView = await service.engine.wait(params.task_id, moved)
        else:
            ended = await experiments.follow(service.store.pool, params.task_id, _caller(ctx, "read"), moved)
        await _notify(ctx, task_of(ended, self.ttl_ms))
        result = self.reply(ended)
        return result.model_copy(update={"meta": {**(result.meta or {}), RELATED: {"taskId": params.task_id}}})

    def _status_notes(
        self, ctx: ServerRequestContext[Any, Any], found: TaskView | ExperimentView
    ) -> Callable[[float, float | None, str | None], Awaitable[None]]:
        """While ``tasks/result`` waits: a ``notifications/tasks/status`` on its stream each time the work moves,
        the progress ("3/5 subtasks finished") as the status message."""
        task = task_of(found, self.ttl_ms)

        async def moved(done: float, total: float | None, message: str | None) -> None:
            if total is not None and done >= total:
                return  # the end: _result tells it with the final status
            now = datetime.now(found.created_at.tzinfo).isoformat()
            await _notify(ctx, task.model_copy(update={"status_message": message, "last_updated_at": now}))

        return moved

    async def _list(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListTasksResult:
        """Tasks and experiments together, newest first. A cursor is an offset into that list, at most
        MAX_OFFSET: each page reads up to offset + PAGE rows of both."""
        principal, offset = _caller(ctx, "read"), _offset(params.cursor if params else None)
        submitter = None if principal.allows("admin") else principal.name
        page = await self.holder.get().engine.list_tasks(None, offset + PAGE, 0, submitter)
        runs = await experiments.summaries(self.holder.get().store.pool, offset + PAGE, submitter)
        both: list[Tracked] = sorted([*page.tasks, *runs.experiments], key=lambda t: t.created_at, reverse=True)
        shown = both[offset : offset + PAGE]
        more = offset + len(shown) < page.total + runs.total
        return types.ListTasksResult(
            tasks=[task_of(t, self.ttl_ms) for t in shown], next_cursor=str(offset + len(shown)) if more else None
        )

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
    ) -> types.CancelTaskResult:
        task_id, service = params.task_id, self.holder.get()
        found = await self._find(ctx, "submit", task_id)
        if found.state != TaskState.RUNNING:
            raise errors.InvalidRequest(f"task {task_id} has already ended")
        if isinstance(found, TaskView):
            found = await service.engine.cancel(task_id)
        else:
            await experiment_runner.cancel(service, task_id)
            found = await experiments.view(service.store.pool, task_id, _caller(ctx, "submit"))
        if found.state != TaskState.CANCELLED:  # it ended on its own in the meantime
            raise errors.InvalidRequest(f"task {task_id} has already ended")
        return types.CancelTaskResult(**dict(task_of(found, self.ttl_ms)))

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
        task = task_of(TASK_TOOLS[params["name"]].model_validate(view), self.ttl_ms)
        created = types.CreateTaskResult(task=task).model_dump(by_alias=True, mode="json", exclude_none=True)
        # a text line too: clients whose SDK checks a tools/call answer as a CallToolResult (the Python SDK's
        # does) then accept it, and one that ignores tasks still learns the id
        line = f"task {task.task_id} {task.status}: poll tasks/get, collect with tasks/result"
        return {**created, "content": [{"type": "text", "text": line}]}


async def _notify(ctx: ServerRequestContext[Any, Any], task: types.Task) -> None:
    params = types.TaskStatusNotificationParams(**dict(task))
    await ctx.session.send_notification(types.TaskStatusNotification(params=params), ctx.request_id)


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 9 or int(cursor) > MAX_OFFSET:
        raise errors.InvalidRequest(f"{cursor[:40]!r} is not a cursor from tasks/list (at most {MAX_OFFSET})")
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
