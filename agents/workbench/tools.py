"""Workbench tools. They do little on purpose, so that what is measured or tested is Reynolds itself:
``echo`` returns its input, ``sleep`` waits (reporting progress), ``fail`` always fails, and
``record`` appends a line to a file in the agent's memory — a visible side effect whose count
proves whether a call ran once or twice; ``emit`` returns awkward output on request (NUL bytes,
undecodable bytes, megabytes of text, deep nesting) to prove Reynolds stores any output safely.
``write_file`` and ``read_file`` work on the current workspace (``read_file`` is a sync tool, so it also
proves the workspace reaches tools run in worker threads)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from agents.runtime import AgentRuntime, ToolError
from agents.runtime.annotations import ADD_LOCAL, READ

RECORD_FILE = "workbench-records.jsonl"


class Echo(BaseModel):
    value: Any
    agent_id: str


class Slept(BaseModel):
    seconds: float
    agent_id: str


class FileText(BaseModel):
    path: str
    text: str
    workspace: str = Field(description="the workspace directory the call worked in")
    agent_id: str


class Recorded(BaseModel):
    key: str
    agent_id: str
    times_seen: int = Field(description="how many times this replica has recorded this key, this one included")
    running: int = Field(description="record calls running on this replica when this one started, itself included")


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    agent_id = runtime.settings.agent_id
    running = 0  # record calls in progress: the records show the replica's peak concurrency

    @server.tool(annotations=READ)
    async def echo(value: Any = None) -> Echo:
        """Return `value` unchanged, with the id of the replica that answered."""
        return Echo(value=value, agent_id=agent_id)

    @server.tool(annotations=READ)
    async def sleep(seconds: Annotated[float, Field(ge=0, le=3600)], ctx: Context) -> Slept:
        """Wait `seconds`, reporting progress every second; stands in for any long-running job."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await anyio.sleep(min(left, 1.0))
            await ctx.report_progress(round(seconds - max(left - 1.0, 0), 3), seconds)
        return Slept(seconds=seconds, agent_id=agent_id)

    @server.tool(annotations=READ)
    async def fail(message: str = "workbench failure requested") -> Echo:
        """Always fail with `message` (a tool error, not a transport error)."""
        raise ToolError(message)

    @server.tool(annotations=ADD_LOCAL)
    async def write_file(path: str, text: Annotated[str, Field(max_length=1_000_000)]) -> FileText:
        """Write `text` to `path` (relative to the workspace), creating directories on the way."""
        target = runtime.layers.workspace_path(path, must_exist=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return FileText(path=path, text=text, workspace=str(runtime.layers.workspace), agent_id=agent_id)

    @server.tool(annotations=READ)
    def read_file(path: str) -> FileText:
        """The text of `path` (relative to the workspace)."""
        target = runtime.layers.workspace_path(path)
        if not target.is_file() or target.stat().st_size > 1_000_000:
            raise ToolError(f"{path!r} is not a file of at most 1 MB in the workspace")
        return FileText(path=path, text=target.read_text(), workspace=str(runtime.layers.workspace), agent_id=agent_id)

    @server.tool(annotations=ADD_LOCAL)
    async def record(key: Annotated[str, Field(min_length=1, max_length=200)], seconds: float = 0.0) -> Recorded:
        """Wait `seconds`, then append `key` to this replica's record file in its memory layer:
        a side effect that can be counted afterwards to prove a call ran exactly once."""
        nonlocal running
        running += 1
        at_start = running
        try:
            await anyio.sleep(seconds)
        finally:
            running -= 1
        path = runtime.layers.memory / RECORD_FILE
        entry = {"key": key, "agent_id": agent_id, "ts": time.time(), "running": at_start}
        with path.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        seen = sum(json.loads(line)["key"] == key for line in path.read_text().splitlines())
        return Recorded(key=key, agent_id=agent_id, times_seen=seen, running=at_start)

    @server.tool(annotations=READ)
    async def emit(
        kind: Literal["nul", "non_utf8", "huge", "deep"], size: Annotated[int, Field(ge=1, le=200_000_000)] = 1
    ) -> Echo:
        """Return awkward output: `nul` text with NUL bytes, `non_utf8` bytes that are not UTF-8 (decoded as a
        careless tool would, with surrogateescape), `huge` `size` bytes of text, `deep` `size` nested lists."""
        value: Any
        if kind == "nul":
            value = "before\x00after\x00" * size
        elif kind == "non_utf8":
            value = (b"caf\xe9 \xff\xfe" * size).decode("utf-8", "surrogateescape")
        elif kind == "huge":
            value = "x" * size
        else:
            value = "bottom"
            for _ in range(size):
                value = [value]
        return Echo(value=value, agent_id=agent_id)
