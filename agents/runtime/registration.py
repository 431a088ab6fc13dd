"""Register this replica with Reynolds and keep it registered with heartbeats."""

from __future__ import annotations

import random

import anyio
import httpx2
import structlog
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agents.runtime.settings import AgentSettings

log = structlog.get_logger("agents.registration")


class Registration:
    """Background loop: register, heartbeat every ``heartbeat_interval_s``, re-register when forgotten.

    Registration returns a lease, this replica's secret: heartbeats present it, and so does a re-registration
    (after a lost connection), so Reynolds knows it is the same replica and not someone reusing its id."""

    def __init__(self, settings: AgentSettings, tools: list[str], inflight: callable) -> None:  # type: ignore[valid-type]
        self.settings = settings
        self.tools = tools
        self.inflight = inflight
        self.registered = False
        self.lease: str | None = None

    async def run(self) -> None:
        s = self.settings
        backoff = 0.5
        while True:
            try:
                async with (
                    httpx2.AsyncClient(
                        headers={"Authorization": f"Bearer {s.agent_token}"},
                        timeout=httpx2.Timeout(30.0),
                    ) as http,
                    Client(streamable_http_client(s.mcp_endpoint, http_client=http)) as reynolds,
                ):
                    await self._serve(reynolds)
            except Exception as err:
                self.registered = False
                log.warning("registration failed", endpoint=s.mcp_endpoint, error=_describe(err))
            await anyio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, 10.0)

    async def _serve(self, reynolds: Client) -> None:
        s = self.settings
        while True:
            if not self.registered:
                result = await reynolds.call_tool(
                    "register_agent",
                    {
                        "agent_id": s.agent_id,
                        "pool": s.pool,
                        "agent_type": s.agent_type,
                        "url": s.url,
                        "max_concurrency": s.agent_max_concurrency,
                        **({"lease": self.lease} if self.lease else {}),
                    },
                )
                if result.is_error:
                    raise RuntimeError(_text(result))
                self.lease = (result.structured_content or {})["lease"]
                self.registered = True
                log.info("registered", agent_id=s.agent_id, pool=s.pool, url=s.url)
            await anyio.sleep(s.heartbeat_interval_s)
            result = await reynolds.call_tool(
                "heartbeat", {"agent_id": s.agent_id, "pool": s.pool, "lease": self.lease, "inflight": self.inflight()}
            )
            if result.is_error:
                raise RuntimeError(_text(result))
            if not (result.structured_content or {}).get("known", False):
                self.registered = False


def _text(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join(getattr(c, "text", "") for c in result.content)


def _describe(err: BaseException) -> str:
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in err.exceptions)
    return f"{type(err).__name__}: {err}"
