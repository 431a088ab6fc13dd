"""One long-lived MCP client per agent replica, reused for every call to it.

A fresh session per call is several times slower, so each replica gets a connection owned by its
own supervisor task (the SDK requires a client to be entered and exited in the same task); calls
from any task share it. A connection that breaks is dropped and reopened on the next call.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
import mcp_types as types
import structlog
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from reynolds import errors

log = structlog.get_logger("reynolds.sessions")

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
CONNECT_TIMEOUT_S = 10.0
MAX_RESULT_BYTES = 64 * 1024 * 1024  # one tool result; the SDK's default (1 MiB) is too small for reports


class Endpoint:
    """How to reach one replica: an HTTP URL (with a bearer token) or a stdio command."""

    def __init__(
        self, key: str, url: str | None = None, token: str | None = None, stdio: StdioServerParameters | None = None
    ) -> None:
        self.key, self.url, self.token, self.stdio = key, url, token, stdio

    def describe(self) -> str:
        if self.stdio is not None:
            return " ".join([self.stdio.command, *self.stdio.args])
        return self.url or self.key


class Connection:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.client: Client | None = None
        self._close = anyio.Event()
        self._started = False
        self.closed = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Open the session, report started, hold it until ``close``; exits in the task that entered it."""
        ep = self.endpoint
        self._started = False
        try:
            if ep.stdio is not None:
                async with Client(ep.stdio) as client:
                    await self._hold(client, task_status)
            else:
                headers = {"Authorization": f"Bearer {ep.token}"} if ep.token else {}
                limits = httpx2.Limits(max_connections=256, max_keepalive_connections=64)
                # read=None: a tool may legitimately run for a long time; Reynolds enforces its own timeouts
                timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=None)
                async with (
                    httpx2.AsyncClient(headers=headers, timeout=timeout, limits=limits, verify=False) as http,
                    Client(
                        streamable_http_client(ep.url, http_client=http, max_sse_event_size=MAX_RESULT_BYTES)
                    ) as client,
                ):
                    await self._hold(client, task_status)
        except Exception as err:
            if not self._started:
                raise  # start() reports it to whoever asked for the connection
            # after start, a broken session must not take the app's task group down with it
            log.warning("agent session ended", endpoint=ep.key, error=_describe(err))
        finally:
            self.client = None
            self.closed.set()

    async def _hold(self, client: Client, task_status: TaskStatus[None]) -> None:
        self.client = client
        self._started = True
        task_status.started()
        await self._close.wait()

    def close(self) -> None:
        self._close.set()

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        meta: dict[str, Any],
        timeout_s: float,
        progress: ProgressFn | None = None,
    ) -> types.CallToolResult:
        client = self.client
        if client is None:
            raise errors.TransportError(f"connection to {self.endpoint.describe()} is closed")
        try:
            with anyio.fail_after(timeout_s if math.isfinite(timeout_s) else None):
                return await client.call_tool(tool, arguments, progress_callback=progress, meta=meta)
        except TimeoutError as err:
            raise errors.CallTimeout(f"{tool} on {self.endpoint.key} did not answer within {timeout_s:g} s") from err
        except MCPError as err:
            raise errors.TransportError(f"{tool} on {self.endpoint.key}: MCP error {err}") from err
        except (
            httpx2.HTTPError,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.EndOfStream,
            OSError,
        ) as err:
            raise errors.TransportError(f"{tool} on {self.endpoint.key}: {type(err).__name__}: {err}") from err

    async def list_tools(self) -> list[types.Tool]:
        if self.client is None:
            raise errors.TransportError(f"connection to {self.endpoint.describe()} is closed")
        tools: list[types.Tool] = []
        cursor = None
        while True:
            page = await self.client.list_tools(cursor=cursor) if cursor else await self.client.list_tools()
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools


class Sessions:
    """The pool of connections, keyed by replica. Lives inside the app's task group."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._tg = task_group
        self._connections: dict[str, Connection] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def get(self, endpoint: Endpoint) -> Connection:
        conn = self._connections.get(endpoint.key)
        if conn is not None and conn.client is not None and conn.endpoint.url == endpoint.url:
            return conn
        lock = self._locks.setdefault(endpoint.key, anyio.Lock())
        async with lock:
            conn = self._connections.get(endpoint.key)
            if conn is not None and conn.client is not None and conn.endpoint.url == endpoint.url:
                return conn
            if conn is not None:
                conn.close()
            conn = Connection(endpoint)
            try:
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    await self._tg.start(conn.run)
            except Exception as err:
                raise errors.AgentUnavailable(f"cannot connect to {endpoint.describe()}: {_describe(err)}") from err
            self._connections[endpoint.key] = conn
            return conn

    def drop(self, key: str) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()

    async def close_all(self) -> None:
        for key in list(self._connections):
            conn = self._connections.pop(key)
            conn.close()
            with anyio.move_on_after(5):
                await conn.closed.wait()


def _describe(err: BaseException) -> str:
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in err.exceptions)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
