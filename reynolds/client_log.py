"""Log notifications to MCP clients: a task's events, at the level the client asked for.

Two protocol eras, one rule each:

- **Handshake era (2025-11-25 and older):** the client sends ``logging/setLevel`` and the server filters.
  ``MCPServer`` answers no such method, so ``answer_set_level`` registers a handler on its low-level server (the
  SDK's one documented hook, ``add_request_handler``; reaching the low-level server is the one private
  access, kept here). The level is kept per caller and ``Mcp-Session-Id``, so one tenant cannot change
  another's; a session that never asked gets ``info`` and above. The handler's presence also makes the
  server declare the ``logging`` capability.
- **2026-07-28 era:** ``logging/setLevel`` is gone; each request opts in with the
  ``io.modelcontextprotocol/logLevel`` ``_meta`` key and the SDK drops what the request did not ask for.

``TaskLog`` turns a task's event rows into messages while ``orchestrate`` waits: one line per event,
``error`` for failures, ``warning`` for retries and skips, ``info`` otherwise."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, get_args

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import EmptyResult, LoggingLevel, SetLevelRequestParams

from reynolds.auth import caller_in
from reynolds.store import Store

LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)  # RFC 5424, least severe first
DEFAULT_LEVEL: LoggingLevel = "info"
MAX_SESSIONS = 10_000  # levels remembered; the oldest is forgotten first (it falls back to the default)
LOGGER = "reynolds.task"
BATCH = 500  # events read per query
EVENT_LEVELS: dict[str, LoggingLevel] = {
    "subtask_failed": "error",
    "task_failed": "error",
    "subtask_retry": "warning",
    "subtasks_skipped": "warning",
    "task_cancelled": "warning",
    "loop_refused": "warning",
    "github_sync_failed": "warning",
}


class Levels:
    """The level each (caller, session) asked for with ``logging/setLevel``."""

    def __init__(self) -> None:
        self._levels: OrderedDict[tuple[str, str], LoggingLevel] = OrderedDict()

    def set(self, key: tuple[str, str], level: LoggingLevel) -> None:
        self._levels[key] = level
        self._levels.move_to_end(key)
        while len(self._levels) > MAX_SESSIONS:
            self._levels.popitem(last=False)

    def get(self, key: tuple[str, str]) -> LoggingLevel:
        return self._levels.get(key, DEFAULT_LEVEL)


def session_key(request: Any) -> tuple[str, str]:
    """(caller, Mcp-Session-Id) of a request's HTTP request; the session part is empty on stateless connections."""
    headers = getattr(request, "headers", None) or {}
    return caller_in(getattr(request, "scope", None) or {}).name, headers.get("mcp-session-id", "")


def answer_set_level(mcp: MCPServer, levels: Levels) -> None:
    """Answer ``logging/setLevel`` (handshake era) by remembering the level for the caller's session."""

    async def set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
        levels.set(session_key(ctx.request), params.level)
        return EmptyResult()

    mcp._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)


class TaskLog:
    """Sends the events of one task that are new since the last ``flush``, at or above the session's level."""

    def __init__(self, ctx: Context, store: Store, task_id: str, level: LoggingLevel) -> None:
        self.ctx, self.store, self.task_id = ctx, store, task_id
        self.floor = LEVELS.index(level)
        self.after = 0

    async def flush(self) -> None:
        while batch := await self.store.events_after(self.task_id, self.after, BATCH):
            for event_id, subtask_id, kind, data in batch:
                self.after = event_id
                level = EVENT_LEVELS.get(kind, "info")
                if LEVELS.index(level) >= self.floor:
                    await self.ctx.log(level, describe(subtask_id, kind, data), logger_name=LOGGER)
            if len(batch) < BATCH:
                return


def describe(subtask_id: str | None, kind: str, data: dict[str, Any]) -> str:
    """One line for an event: ``subtask build: subtask_failed (boom)``; the detail bounded."""
    detail = data.get("error") or data.get("reason") or data.get("ids") or data.get("agent_id") or ""
    where = f"subtask {subtask_id}: " if subtask_id else "task: "
    return where + kind + (f" ({str(detail)[:300]})" if detail else "")
