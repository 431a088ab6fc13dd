"""Pooled MCP sessions against real servers over HTTP (a plain SDK server run as a process): results, a
server's JSON-RPC error as the call's own error, liveness, tools learned on connect and on change, a dead
server as a transport failure, and HTTPS verified against the system's CAs or a private one."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import MCPError

from reynolds import errors
from reynolds.sessions import MAX_ERROR_CHARS, Endpoint, Sessions, _answer_error, tls_context
from tests.servers import process
from tests.servers.tls import make_ca

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = process.free_port()
    proc = process.start(port, "one", tmp_path_factory.mktemp("plain") / "server.log")
    yield f"http://127.0.0.1:{port}/mcp"
    process.kill(proc)


@asynccontextmanager
async def open_sessions(tls: ssl.SSLContext | None = None) -> AsyncIterator[Sessions]:
    async with anyio.create_task_group() as tg:
        sessions = Sessions(tg, tls)
        yield sessions
        await sessions.close_all()
        tg.cancel_scope.cancel()


async def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(400):  # 20 s
        if check():
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_call_returns_the_servers_result(server: str) -> None:
    async with open_sessions() as sessions:
        conn = await sessions.get(Endpoint("p/0", url=server))
        result = await conn.call("where", {"n": 3}, {}, 10)
        assert result.structured_content == {"server": "one", "n": 3}
        await conn.ping()  # the liveness request of the negotiated protocol is answered


async def test_a_json_rpc_error_answer_is_the_calls_error_with_its_code_and_a_bounded_message(server: str) -> None:
    async with open_sessions() as sessions:
        conn = await sessions.get(Endpoint("p/0", url=server))
        with pytest.raises(errors.RemoteError) as caught:
            await conn.call("picky", {"value": 3}, {}, 10)
        assert caught.value.code == types.INVALID_PARAMS and not caught.value.retryable
        assert "value must be even" in str(caught.value) and len(str(caught.value)) < MAX_ERROR_CHARS + 200
        assert (await conn.call("picky", {"value": 4}, {}, 10)).structured_content == {"result": 4}  # still fine


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (types.INVALID_PARAMS, errors.RemoteError),
        (-32042, errors.RemoteError),  # a server's own code
        (7, errors.RemoteError),
        (types.CONNECTION_CLOSED, errors.TransportError),  # what the SDK says when the connection dropped
        (types.INTERNAL_ERROR, errors.TransportError),  # also an HTTP 5xx without a JSON-RPC body
        (types.METHOD_NOT_FOUND, errors.TransportError),  # also an HTTP 404
        (types.PARSE_ERROR, errors.TransportError),
        (types.REQUEST_TIMEOUT, errors.TransportError),
    ],
)
def test_which_json_rpc_errors_are_the_calls_and_which_the_connections(code: int, kind: type) -> None:
    err = _answer_error("t on p/0", MCPError(code, "boom"))
    assert type(err) is kind and f"MCP error {code}: boom" in str(err)


async def test_tools_are_learned_on_connect_and_again_when_the_server_says_they_changed(server: str) -> None:
    learned: list[list[str]] = []
    async with open_sessions() as sessions:
        endpoint = Endpoint("p/0", url=server, on_tools=lambda tools: learned.append([t.name for t in tools]))
        conn = await sessions.get(endpoint)
        assert learned == [["where", "picky", "grow", "shrink"]]
        await conn.call("grow", {"tool": "fresh"}, {}, 10)
        await eventually(lambda: "fresh" in learned[-1], "the added tool to be learned")
        await conn.call("shrink", {"tool": "fresh"}, {}, 10)
        await eventually(lambda: "fresh" not in learned[-1], "the removed tool to be forgotten")


async def test_a_dead_server_is_a_transport_failure_and_a_refused_connect(tmp_path: Path) -> None:
    port = process.free_port()
    proc = process.start(port, "doomed", tmp_path / "doomed.log")
    endpoint = Endpoint("p/0", url=f"http://127.0.0.1:{port}/mcp")
    async with open_sessions() as sessions:
        conn = await sessions.get(endpoint)
        process.kill(proc)
        with pytest.raises(errors.TransportError) as caught:
            await conn.call("where", {}, {}, 10)
        assert not isinstance(caught.value, errors.RemoteError)
        with pytest.raises(errors.TransportError):
            await conn.ping()
        sessions.drop(endpoint.key)
        with pytest.raises(errors.AgentUnavailable, match="cannot connect"):
            await sessions.get(endpoint)


async def test_https_is_verified_and_a_private_ca_is_trusted_through_the_ca_setting(tmp_path: Path) -> None:
    ca, cert, key = make_ca(tmp_path)
    port = process.free_port()
    proc = process.start(port, "secure", tmp_path / "secure.log", "--cert", str(cert), "--key", str(key))
    endpoint = Endpoint("p/0", url=f"https://127.0.0.1:{port}/mcp")
    try:
        async with open_sessions(tls_context()) as sessions:
            with pytest.raises(errors.AgentUnavailable, match=r"TLS certificate not trusted.*REYNOLDS_CA_FILE"):
                await sessions.get(endpoint)
        async with open_sessions(tls_context(ca)) as sessions:
            conn = await sessions.get(endpoint)
            assert (await conn.call("where", {}, {}, 10)).structured_content == {"server": "secure", "n": 0}
    finally:
        process.kill(proc)


def test_a_ca_file_that_is_not_pem_is_refused_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        tls_context(junk)


def test_the_plain_server_has_no_health_route(server: str) -> None:
    import httpx2

    assert httpx2.get(server.replace("/mcp", "/health")).status_code == 404


async def test_a_2025_list_changed_notification_makes_the_connection_list_again(server: str) -> None:
    # 2025-11-25 servers say it with notifications/tools/list_changed (the SDK server here speaks 2026-07-28,
    # so the notification is handed to the connection's message handler as the SDK would)
    learned: list[int] = []
    async with open_sessions() as sessions:
        conn = await sessions.get(Endpoint("p/0", url=server, on_tools=lambda tools: learned.append(len(tools))))
        await eventually(lambda: len(learned) >= 2, "the re-list that follows the change stream's ack")
        before = len(learned)
        await conn._on_message(types.ToolListChangedNotification())
        await eventually(lambda: len(learned) > before, "a re-list after the notification")
