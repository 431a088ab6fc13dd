"""Build one agent replica: an ``MCPServer`` with its type's tools on ``/mcp`` (agent token required),
``/health`` and ``/metrics``, knowledge and context exposed as resources, and registration with
Reynolds running for as long as the app does."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import AsyncIterator

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import FileResource
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from agents.runtime.annotations import READ
from agents.runtime.context import AgentRuntime
from agents.runtime.idempotency import IdempotencyMiddleware
from agents.runtime.memory import Recall
from agents.runtime.observe import AgentMetrics, CallObserver
from agents.runtime.registration import Registration
from agents.runtime.settings import AGENT_TYPES, AgentSettings
from agents.runtime.workspace import WorkspaceMiddleware
from reynolds.auth import BearerAuth


def build_server(runtime: AgentRuntime) -> MCPServer:
    """The agent's MCP server: shared tools (``recall``), its type's tools, its layers as resources."""
    s = runtime.settings
    long_name, pool, module = AGENT_TYPES[s.kind]
    server = MCPServer(
        f"reynolds-{s.kind}-agent",
        version="0.1.0",
        instructions=f"Reynolds {long_name} agent ({s.agent_id}); pool '{pool}'.",
    )

    @server.tool(annotations=READ)
    def recall(tool: str | None = None, query: str | None = None, limit: int = 20) -> Recall:
        """What this agent remembers of its own tool runs: per-tool run/failure counts, mean duration,
        the most common failure signatures, and the latest runs whose tool or summary match `query`."""
        return runtime.memory.recall(tool, query, max(1, min(limit, 200)))

    for layer, root in (("knowledge", runtime.layers.knowledge), ("context", runtime.layers.context)):
        for path in runtime.layers.files(layer):
            relative = path.relative_to(root).as_posix()
            server.add_resource(
                FileResource(
                    uri=f"{layer}://{s.kind}/{relative}",
                    name=f"{layer}/{relative}",
                    description=f"{layer} layer file {relative}",
                    path=path.resolve(),
                    mime_type="application/json" if path.suffix == ".json" else "text/plain",
                )
            )

    importlib.import_module(module).register_tools(server, runtime)
    return server


def build_app(settings: AgentSettings | None = None) -> ASGIApp:
    settings = settings or AgentSettings()
    runtime = AgentRuntime(settings)
    server = build_server(runtime)
    registry = CollectorRegistry()
    observer = CallObserver(AgentMetrics(registry), runtime.memory)
    # dedupe first: a replayed call is neither run nor remembered twice
    server.middleware.extend([IdempotencyMiddleware(), observer])
    if settings.task_workspaces:  # the docker agent reads no repository content and mounts no workspaces
        server.middleware.append(WorkspaceMiddleware(settings.workspaces_dir))
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", f"{_host_of(settings.url)}:*", *settings.allowed_hosts],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    )
    mcp_app = server.streamable_http_app(transport_security=security, host=settings.agent_host)
    started = time.time()
    registration: Registration | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal registration
        tools = [t.name for t in await server.list_tools()]
        observer.metrics.prime(tools)
        async with server.session_manager.run(), anyio.create_task_group() as tg:
            if settings.mcp_endpoint:
                registration = Registration(settings, tools, lambda: observer.inflight)
                tg.start_soon(registration.run)
            yield
            tg.cancel_scope.cancel()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "agent_id": settings.agent_id,
                "agent_type": settings.agent_type,
                "pool": settings.pool,
                "registered": bool(registration and registration.registered),
                "inflight": observer.inflight,
                "uptime_s": round(time.time() - started, 1),
            }
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[Route("/health", health), Route("/metrics", metrics), Mount("/", app=mcp_app)],
        lifespan=lifespan,
    )
    return BearerAuth(app, {"/mcp": [settings.agent_token]}, realm="agent")


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
