"""A small client for Reynolds' MCP endpoint, used by the CLI (and handy in scripts)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from reynolds import errors

DEFAULT_URL = "http://127.0.0.1:8080/mcp"
LOCAL_TOKEN_FILE = Path(".reynolds") / "client_token"  # written by `reynolds up`

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


def resolve_token(token: str | None = None) -> str:
    """The client token: --token, REYNOLDS_TOKEN, REYNOLDS_TOKEN_FILE, or the one `reynolds up` wrote."""
    if token:
        return token
    if os.environ.get("REYNOLDS_TOKEN"):
        return os.environ["REYNOLDS_TOKEN"]
    for candidate in (os.environ.get("REYNOLDS_TOKEN_FILE"), LOCAL_TOKEN_FILE):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text().split()[0]  # a tokens-file line: "<token> [name] [scopes]"
    raise errors.InvalidRequest("no client token: pass --token, or set REYNOLDS_TOKEN or REYNOLDS_TOKEN_FILE")


@contextlib.asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30.0, read=None)
        ) as http,
        Client(streamable_http_client(url, http_client=http, max_sse_event_size=None)) as client,
    ):
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any], progress: ProgressFn | None = None) -> Any:
    """Call a Reynolds tool; its structured result, or ReynoldsError with the server's message."""
    result = await client.call_tool(tool, arguments, progress_callback=progress)
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise errors.ReynoldsError(text.removeprefix(f"Error executing tool {tool}: "))
    return result.structured_content
