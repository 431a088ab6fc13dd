"""Reynolds' HTTP face: the client MCP endpoint (``/mcp``), the agent endpoint (``/agents/mcp``),
``/health``, ``/ready`` and ``/metrics``. Tool functions are thin: validate, call the engine, return a model.

No ``from __future__ import annotations`` here: the SDK reads the tools' annotations at registration, and
the sampling resolvers they name are closures that only exist in this scope."""

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from mcp.server.mcpserver import Context, MCPServer, RequestStateSecurity, Resolve, Sample
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CreateMessageResult
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from reynolds import __version__, errors, ui
from reynolds.auth import BearerAuth
from reynolds.config import Settings
from reynolds.decompose import SYSTEM_PROMPT, parse_plan, plan_from_goal, retry_messages, sampling_messages
from reynolds.models import (
    AgentsView,
    Plan,
    Planning,
    PlanView,
    PoolView,
    ReplicaView,
    Strategy,
    SubtaskSpec,
    TaskList,
    TaskState,
    TaskView,
)
from reynolds.registry import Replica
from reynolds.scaling import ScaleResult
from reynolds.service import Service, running, scale

log = structlog.get_logger("reynolds.server")
SAMPLING_MAX_TOKENS = 4000

INSTRUCTIONS = """Reynolds runs a plan (a DAG of tool calls) on pools of specialist agents, in parallel where the
graph allows, with retries, and reports progress and the result. Call list_agents to see which tools exist,
plan_task to check a plan without running it, orchestrate to run it."""


class Holder:
    """The running service, set by the app's lifespan (tools are declared before it exists)."""

    service: Service | None = None

    def get(self) -> Service:
        if self.service is None:
            raise errors.ServiceUnavailable("Reynolds is starting up; try again in a moment")
        return self.service


def client_server(holder: Holder, state_key: str) -> MCPServer:
    mcp = MCPServer(
        "reynolds",
        version=__version__,
        instructions=INSTRUCTIONS,
        request_state_security=RequestStateSecurity(keys=[state_key]),
        extensions=[ui.task_app()],
    )

    # Planning from a goal asks the client's LLM through MCP sampling (when the client offers it). The SDK
    # runs these resolvers before the tool body and, on 2026-07-28 connections, resumes the call when the
    # client answers; the second resolver asks again once if the first answer does not make a valid plan.
    async def first_draft(ctx: Context, plan: Plan | None = None, goal: str | None = None) -> Sample | None:
        caps = ctx.client_capabilities
        if plan is not None or not goal or not (caps and caps.sampling):
            return None
        specs = await holder.get().registry.tool_specs()
        return Sample(sampling_messages(goal, specs), max_tokens=SAMPLING_MAX_TOKENS, system_prompt=SYSTEM_PROMPT)

    async def second_draft(
        draft: Annotated[CreateMessageResult | None, Resolve(first_draft)],
        goal: str | None = None,
        strategy: Strategy = "parallel",
    ) -> Sample | None:
        if draft is None or not goal:
            return None
        service = holder.get()
        answer = _text(draft)
        try:
            await service.engine.plan(parse_plan(answer), strategy)
            return None
        except errors.PlanError as err:
            specs = await service.registry.tool_specs()
            return Sample(
                retry_messages(goal, specs, answer, str(err)),
                max_tokens=SAMPLING_MAX_TOKENS,
                system_prompt=SYSTEM_PROMPT,
            )

    async def resolve_plan(
        plan: Plan | None, goal: str | None, draft: CreateMessageResult | None, redraft: CreateMessageResult | None
    ) -> tuple[Plan, Planning]:
        if plan is not None:
            return plan, Planning(planner="client")
        if not goal:
            raise errors.InvalidRequest('give a plan ({"subtasks": [...]}) or a goal to plan from')
        specs = await holder.get().registry.tool_specs()
        return plan_from_goal(goal, specs, _text(draft) if draft else None, _text(redraft) if redraft else None)

    @mcp.tool(meta=ui.TASK_APP_META)
    async def orchestrate(
        ctx: Context,
        draft: Annotated[CreateMessageResult | None, Resolve(first_draft)],
        redraft: Annotated[CreateMessageResult | None, Resolve(second_draft)],
        plan: Plan | None = None,
        goal: Annotated[str | None, Field(max_length=10_000)] = None,
        wait: bool = True,
        strategy: Strategy = "parallel",
        priority: Annotated[int, Field(ge=-100, le=100)] = 0,
        timeout_s: Annotated[float | None, Field(gt=0, le=7 * 86_400)] = None,
        track_in_github: bool = False,
    ) -> TaskView:
        """Run a plan: a DAG of tool calls ({"subtasks": [{"id", "tool", "arguments", "depends_on", "pool"?}]}).
        Independent subtasks run in parallel on the pools whose agents offer the tools; an argument
        {"$from": "<dependency id>", "path": "a.b"} is replaced by that dependency's output. Without a plan,
        `goal` is planned: by your LLM through MCP sampling when your client offers it, otherwise by matching
        its words to tool names (the plan used is in the result). With wait=true (default) progress is
        reported and the finished task returned; wait=false returns at once with the task id (poll get_task).
        strategy: parallel | sequential | auto. priority: higher runs first. timeout_s fails the task when
        exceeded. track_in_github keeps a tracking issue with a checklist (needs REYNOLDS_GITHUB_* settings)."""
        plan, planning = await resolve_plan(plan, goal, draft, redraft)
        service = holder.get()
        task_id, _ = await service.engine.submit(plan, goal, strategy, priority, timeout_s, planning, track_in_github)
        if not wait:
            return await service.engine.get_task(task_id)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.report_progress(done, total, message)

        return await service.engine.wait(task_id, progress)

    @mcp.tool()
    async def plan_task(
        draft: Annotated[CreateMessageResult | None, Resolve(first_draft)],
        redraft: Annotated[CreateMessageResult | None, Resolve(second_draft)],
        plan: Plan | None = None,
        goal: Annotated[str | None, Field(max_length=10_000)] = None,
        strategy: Strategy = "parallel",
    ) -> PlanView:
        """Dry run: validate a plan (or plan a goal, as orchestrate would) and show what Reynolds would do — the
        pool of each subtask, the waves that can run together, the critical path and estimated makespan.
        Nothing is stored or executed."""
        plan, planning = await resolve_plan(plan, goal, draft, redraft)
        view = await holder.get().engine.plan(plan, strategy)
        view.planning = planning
        return view

    @mcp.tool(meta=ui.TASK_APP_META)
    async def get_task(task_id: str, include_events: bool = False) -> TaskView:
        """Status of a task and each subtask: state, attempts, agent, timings, result or error. With
        include_events, also the task's event log (submission, retries with their errors, skips, refusals...)."""
        return await holder.get().engine.get_task(task_id, include_events)

    @mcp.tool()
    async def list_tasks(
        state: TaskState | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> TaskList:
        """Tasks, newest first, optionally only those in one state; paged with limit/offset."""
        return await holder.get().engine.list_tasks(state, limit, offset)

    @mcp.tool()
    async def cancel_task(task_id: str) -> TaskView:
        """Cancel a running task: nothing more is dispatched, in-flight calls are cancelled, it ends cancelled."""
        engine = holder.get().engine
        await engine.get_task(task_id)  # validates the id and existence first
        return await engine.cancel(task_id)

    @mcp.tool()
    async def list_agents() -> AgentsView:
        """Pools and their replicas: health, circuit state, load, and the tools each pool offers."""
        return await agents_view(holder.get())

    @mcp.tool()
    async def scale_pool(
        pool: Annotated[str, Field(min_length=1, max_length=64)],
        replicas: Annotated[int, Field(ge=0, le=50)],
    ) -> ScaleResult:
        """Set the number of replicas of an agent pool (devops, platform, code) through the Docker API: on
        Compose, containers are added or removed like `docker compose up --scale`; on Swarm, the service is
        updated. New replicas register themselves; list_agents shows them within seconds."""
        return await scale(holder.get(), pool, replicas)

    @mcp.resource("reynolds://tasks/{task_id}", mime_type="application/json")
    async def task_resource(task_id: str) -> str:
        """A task with all its subtasks, as JSON."""
        return (await holder.get().engine.get_task(task_id)).model_dump_json()

    @mcp.resource("reynolds://agents", mime_type="application/json")
    async def agents_resource() -> str:
        """The agent fleet, as JSON."""
        return (await agents_view(holder.get())).model_dump_json()

    return mcp


async def agents_view(service: Service) -> AgentsView:
    by_pool: dict[str, list[Replica]] = {}
    for r in await service.registry.replicas():
        by_pool.setdefault(r.pool, []).append(r)
    for pool in await service.queue.pools():
        by_pool.setdefault(pool, [])
    pools = []
    for pool in sorted(by_pool):
        replicas = []
        for r in sorted(by_pool[pool], key=lambda r: r.agent_id):
            h = service.registry.health_of(r)
            replicas.append(
                ReplicaView(
                    agent_id=r.agent_id,
                    url=r.url,
                    agent_type=r.agent_type,
                    healthy=h.healthy,
                    circuit=h.circuit.current(),
                    inflight=h.inflight,
                    max_concurrency=r.max_concurrency,
                    last_heartbeat_s_ago=round(time.time() - r.heartbeat_at, 1) if r.heartbeat_at else None,
                    tools=sorted(r.tools),
                    static=r.static,
                )
            )
        depth, _age = await service.queue.depth(pool)
        tools = sorted({t for r in by_pool[pool] for t in r.tools})
        pools.append(PoolView(pool=pool, replicas=replicas, tools=tools, queue_depth=depth))
    return AgentsView(pools=pools)


class Registered(BaseModel):
    registered: bool
    pool: str
    tools: list[str]


class Heartbeat(BaseModel):
    known: bool = Field(description="false: Reynolds has forgotten this replica; call register_agent again")


class HandoffResult(BaseModel):
    task_id: str
    added: list[str]


def agent_server(holder: Holder) -> MCPServer:
    mcp = MCPServer(
        "reynolds-agents",
        version=__version__,
        instructions="Endpoint for Reynolds agents: register, heartbeat, hand work off.",
    )

    @mcp.tool()
    async def register_agent(
        agent_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")],
        pool: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
        agent_type: Annotated[str, Field(min_length=1, max_length=64)],
        url: Annotated[str, Field(pattern=r"^https?://")],
        max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 16,
    ) -> Registered:
        """Join a pool. Reynolds connects back to `url` with the agent token and lists the replica's tools;
        registration fails if it cannot."""
        service = holder.get()
        replica = Replica(
            agent_id=agent_id, pool=pool, agent_type=agent_type, url=url, max_concurrency=max_concurrency, tools=[]
        )
        service.sessions.drop(replica.key)  # a re-registration may come from a new process at the same id
        connection = await service.sessions.get(replica.endpoint(service.settings.agent_token))
        try:
            replica.learn(await connection.list_tools())
        except Exception as err:
            service.sessions.drop(replica.key)
            raise errors.AgentUnavailable(f"registered URL {url} did not list its tools: {err}") from err
        await service.registry.register(replica)
        log.info("agent registered", agent_id=agent_id, pool=pool, url=url, tools=len(replica.tools))
        return Registered(registered=True, pool=pool, tools=replica.tools)

    @mcp.tool()
    async def heartbeat(
        agent_id: Annotated[str, Field(min_length=1, max_length=128)],
        pool: Annotated[str, Field(min_length=1, max_length=64)],
        inflight: Annotated[int, Field(ge=0)] = 0,
    ) -> Heartbeat:
        """Keep a registration alive (call every few seconds, well inside the heartbeat TTL)."""
        return Heartbeat(known=await holder.get().registry.heartbeat(pool, agent_id))

    @mcp.tool()
    async def handoff(
        task_id: str,
        subtask_id: str,
        subtasks: Annotated[list[SubtaskSpec], Field(min_length=1)],
    ) -> HandoffResult:
        """Ask Reynolds to add subtasks to the running task that `subtask_id` belongs to (e.g. hand a finding to
        another pool). Depth, repetition and fan-out are limited; refusals say which limit was hit."""
        added = await holder.get().engine.handoff(task_id, subtask_id, subtasks)
        return HandoffResult(task_id=task_id, added=added)

    return mcp


def request_state_key(settings: Settings) -> str:
    """The key sealing 2026-era sampling round-trips. Every Reynolds replica must use the same one, so it is
    derived from the client tokens they already share."""
    material = "\n".join(sorted(settings.client_token_list))
    return hashlib.sha256(f"reynolds-request-state\n{material}".encode()).hexdigest()


def _text(result: CreateMessageResult) -> str:
    content = result.content
    return (
        getattr(content, "text", "")
        if not isinstance(content, list)
        else " ".join(getattr(c, "text", "") for c in content)
    )


def build_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    if not settings.client_token_list:
        raise errors.InvalidRequest("no client token: set REYNOLDS_CLIENT_TOKENS_FILE (one token per line)")
    if not settings.agent_token:
        raise errors.InvalidRequest("no agent token: set REYNOLDS_AGENT_TOKEN_FILE")
    holder = Holder()
    clients, agents = client_server(holder, request_state_key(settings)), agent_server(holder)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
    )
    client_app = clients.streamable_http_app(transport_security=security, host=settings.host)
    agent_app = agents.streamable_http_app(transport_security=security, host=settings.host)
    prometheus = CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with clients.session_manager.run(), agents.session_manager.run(), running(settings, prometheus) as svc:
            holder.service = svc
            await svc.ready()
            log.info("reynolds ready", host=settings.host, port=settings.port)
            try:
                yield
            finally:
                holder.service = None

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def ready(request: Request) -> JSONResponse:
        if holder.service is None:
            return JSONResponse({"ready": False, "checks": {"service": "starting"}}, status_code=503)
        ok, checks = await holder.service.ready()
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(prometheus), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
            Mount("/agents", app=agent_app),
            ui.routes(holder, agents_view),
            Mount("/", app=client_app),
        ],
        lifespan=lifespan,
    )
    protected = {"/mcp": settings.client_token_list, "/agents/mcp": [settings.agent_token]}
    return BearerAuth(app, protected | {ui.API_PREFIX: settings.client_token_list})  # the page's JSON: client token
