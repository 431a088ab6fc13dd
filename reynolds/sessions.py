"""One long-lived MCP client per replica, reused for every call to it.

A fresh session per call is several times slower, so each replica gets a connection owned by its
own supervisor task (the SDK requires a client to be entered and exited in the same task); calls
from any task share it. A connection that breaks is dropped and reopened on the next call or probe.

A connection whose endpoint wants the replica's tools (the pools file's servers) lists them when it
opens and again whenever the server says they changed: a ``subscriptions/listen`` stream on the
2026-07-28 protocol, ``notifications/tools/list_changed`` on 2025-11-25.

HTTPS is verified against the system's CAs plus ``REYNOLDS_CA_FILE`` (a private CA), one TLS context
shared by every connection.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import structlog
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from reynolds import errors, tracing

log = structlog.get_logger("reynolds.sessions")

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
ToolsFn = Callable[[list[types.Tool]], None]
CONNECT_TIMEOUT_S = 10.0
MAX_RESULT_BYTES = 64 * 1024 * 1024  # one tool result; the SDK's default (1 MiB) is too small for reports
MAX_ERROR_CHARS = 2000  # of a server's error message: it reaches Postgres, logs and clients
MAX_TOOL_PAGES = 50  # of one tools/list: a server handing out cursors forever must not hold us
RELEARN_GAP_S = 0.5  # at least this long between two re-lists: a server spamming list_changed is throttled
# JSON-RPC codes the SDK's own transport synthesizes when the connection, not the server, failed
# (connection closed, timeout, an unparsable or non-JSON-RPC HTTP answer, a 404 "session terminated").
# Any other code is the server answering this call with an error: the call's fault, not the replica's.
TRANSPORT_CODES = frozenset(
    {
        types.CONNECTION_CLOSED,
        types.REQUEST_TIMEOUT,
        types.PARSE_ERROR,
        types.INVALID_REQUEST,
        types.METHOD_NOT_FOUND,
        types.INTERNAL_ERROR,
    }
)


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Certificates verified (hostname too) against the system's CAs, plus ``ca_file``'s when given."""
    context = httpx2.create_ssl_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


class Endpoint:
    """How to reach one replica: an HTTP URL (with a bearer token) or a stdio command; ``on_tools`` is told
    the replica's tools on every connect and change (None: the replica declares them itself)."""

    def __init__(
        self,
        key: str,
        url: str | None = None,
        token: str | None = None,
        stdio: StdioServerParameters | None = None,
        on_tools: ToolsFn | None = None,
    ) -> None:
        self.key, self.url, self.token, self.stdio, self.on_tools = key, url, token, stdio, on_tools

    def describe(self) -> str:
        if self.stdio is not None:
            return " ".join([self.stdio.command, *self.stdio.args])
        return self.url or self.key


class Connection:
    def __init__(self, endpoint: Endpoint, tls: ssl.SSLContext) -> None:
        self.endpoint = endpoint
        self.tls = tls
        self.client: Client | None = None
        self._close = anyio.Event()
        self._started = False
        self._tools_changed = anyio.Event()
        self.closed = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Open the session, report started, hold it until ``close``; exits in the task that entered it."""
        ep = self.endpoint
        self._started = False
        try:
            if ep.stdio is not None:
                async with Client(ep.stdio, message_handler=self._on_message) as client:
                    await self._hold(client, task_status)
            else:
                headers = {"Authorization": f"Bearer {ep.token}"} if ep.token else {}
                limits = httpx2.Limits(max_connections=256, max_keepalive_connections=64)
                # read=None: a tool may legitimately run for a long time; Reynolds enforces its own timeouts
                timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=None)
                transport = httpx2.AsyncClient(headers=headers, timeout=timeout, limits=limits, verify=self.tls)
                async with (
                    transport as http,
                    Client(
                        streamable_http_client(ep.url, http_client=http, max_sse_event_size=MAX_RESULT_BYTES),
                        message_handler=self._on_message,
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
        on_tools = self.endpoint.on_tools
        if on_tools is not None:
            on_tools(await self.list_tools())
        self._started = True
        task_status.started()
        async with anyio.create_task_group() as tg:
            if on_tools is not None:
                tg.start_soon(self._listen, client)
                tg.start_soon(self._relearn, on_tools)
            await self._close.wait()
            tg.cancel_scope.cancel()

    async def _on_message(self, message: IncomingMessage) -> None:
        # runs in the session's receive loop: only signal here, a request from this loop would deadlock it
        if isinstance(message, types.ToolListChangedNotification):
            self._tools_changed.set()

    async def _listen(self, client: Client) -> None:
        """Turn the 2026-07-28 change stream into re-lists; a lost stream re-lists too (the server may have
        restarted with other tools) and is opened again."""
        while True:
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    if not subscription.honored.tools_list_changed:
                        return
                    self._tools_changed.set()  # a change before the stream was acknowledged went unheard
                    async for _event in subscription:
                        self._tools_changed.set()
            except ListenNotSupportedError:
                return  # 2025-11-25: notifications arrive through _on_message
            except MCPError as err:
                if err.code == types.METHOD_NOT_FOUND:
                    return  # no change stream: tools are learned again on reconnect
                log.debug("tools change stream failed", endpoint=self.endpoint.key, error=_bounded(str(err)))
            except SubscriptionLost:
                pass
            self._tools_changed.set()
            await anyio.sleep(1.0)

    async def _relearn(self, on_tools: ToolsFn) -> None:
        while True:
            await self._tools_changed.wait()
            self._tools_changed = anyio.Event()
            try:
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    on_tools(await self.list_tools())
                log.info("tools re-learned", endpoint=self.endpoint.key)
            except (errors.DispatchError, TimeoutError) as err:
                log.warning("re-listing tools failed", endpoint=self.endpoint.key, error=str(err))
            await anyio.sleep(RELEARN_GAP_S)

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
        client = self._client()
        try:
            with anyio.fail_after(timeout_s if math.isfinite(timeout_s) else None):
                return await client.call_tool(tool, arguments, progress_callback=progress, meta=meta)
        except TimeoutError as err:
            raise errors.CallTimeout(f"{tool} on {self.endpoint.key} did not answer within {timeout_s:g} s") from err
        except MCPError as err:
            raise _answer_error(f"{tool} on {self.endpoint.key}", err) from err
        except ValidationError as err:
            message = f"{tool} on {self.endpoint.key} answered with a malformed result: {_bounded(str(err))}"
            raise errors.RemoteError(message) from err
        except _BROKEN as err:
            raise errors.TransportError(f"{tool} on {self.endpoint.key}: {type(err).__name__}: {err}") from err

    async def ping(self) -> None:
        """MCP's own liveness check: ``ping`` on 2025-11-25; on 2026-07-28, which dropped ping, a fresh
        ``server/discover`` (the SDK's ``discover()`` answers from its cache)."""
        session = self._client().session
        try:
            version = session.protocol_version
            if version in MODERN_PROTOCOL_VERSIONS:
                await session.send_discover(version)
            else:
                await session.send_ping()
        except MCPError as err:
            raise errors.TransportError(f"ping {self.endpoint.key}: {_bounded(str(err))}") from err
        except _BROKEN as err:
            raise errors.TransportError(f"ping {self.endpoint.key}: {type(err).__name__}: {err}") from err

    async def list_tools(self) -> list[types.Tool]:
        client = self._client()
        tools: list[types.Tool] = []
        cursor = None
        try:
            for _ in range(MAX_TOOL_PAGES):
                page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return tools
        except MCPError as err:
            raise errors.TransportError(f"tools/list on {self.endpoint.key}: {_bounded(str(err))}") from err
        except (ValidationError, *_BROKEN) as err:
            raise errors.TransportError(f"tools/list on {self.endpoint.key}: {type(err).__name__}") from err
        log.warning("tools/list kept handing out pages; using the first ones", endpoint=self.endpoint.key)
        return tools

    def _client(self) -> Client:
        if self.client is None:
            raise errors.TransportError(f"connection to {self.endpoint.describe()} is closed")
        return self.client


_BROKEN = (httpx2.HTTPError, anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)


def _answer_error(what: str, err: MCPError) -> errors.DispatchError:
    """A JSON-RPC error the server sent is the call's error (RemoteError); one the transport made up for a
    broken connection is a TransportError, retried elsewhere."""
    message = f"{what}: MCP error {err.code}: {_bounded(err.error.message)}"
    if err.code in TRANSPORT_CODES:
        return errors.TransportError(message)
    return errors.RemoteError(message, code=err.code)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + f" … ({len(text)} characters)"


class Sessions:
    """The pool of connections, keyed by replica. Lives inside the app's task group."""

    def __init__(self, task_group: TaskGroup, tls: ssl.SSLContext | None = None) -> None:
        self._tg = task_group
        self.tls = tls or tls_context()
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
            conn = Connection(endpoint, self.tls)
            try:
                with anyio.fail_after(CONNECT_TIMEOUT_S), tracing.detached():
                    await self._tg.start(conn.run)
            except Exception as err:
                raise errors.AgentUnavailable(f"cannot connect to {endpoint.describe()}: {_why(err)}") from err
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


def _why(err: BaseException) -> str:
    """Why a connection could not be opened; an untrusted certificate says how to trust a private CA."""
    if _find(err, ssl.SSLCertVerificationError) is not None:
        return (
            f"TLS certificate not trusted ({_describe(err)}); for a private CA set REYNOLDS_CA_FILE to its "
            "certificate bundle"
        )
    return _bounded(_describe(err))


def _find(err: BaseException | None, kind: type[BaseException], depth: int = 0) -> BaseException | None:
    """``err`` or the first ``kind`` among its groups' members and causes (bounded: chains can loop)."""
    if err is None or depth > 8:
        return None
    if isinstance(err, kind):
        return err
    nested = [*(err.exceptions if isinstance(err, BaseExceptionGroup) else ()), err.__cause__, err.__context__]
    return next((f for e in nested if (f := _find(e, kind, depth + 1)) is not None), None)


def _describe(err: BaseException) -> str:
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in err.exceptions)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
