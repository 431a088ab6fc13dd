"""Reynolds' HTTP face: the client MCP endpoint (``/mcp``), the agent endpoint (``/agents/mcp``),
``/health``, ``/ready`` and ``/metrics``. Tool functions are thin: validate, call the engine, return a model.

No ``from __future__ import annotations`` here: the SDK reads the tools' annotations at registration, and
the sampling resolvers they name are closures that only exist in this scope."""

import asyncio
import contextlib
import hashlib
import json
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import structlog
from mcp.server.mcpserver import Context, Elicit, MCPServer, RequestStateSecurity, Resolve, Sample
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, CreateMessageResult, TextContent, Tool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from reynolds import __version__, egress, errors, mcp_tasks, ui, workspaces
from reynolds.auth import (
    ANY_POOL,
    BearerAuth,
    Principal,
    TokenTable,
    agent_token_for,
    agent_verifier,
    parse_client_tokens,
    principal_of,
    require,
)
from reynolds.client_log import Levels, TaskLog, answer_set_level, session_key
from reynolds.config import Settings
from reynolds.decompose import SYSTEM_PROMPT, parse_plan, plan_from_goal, retry_messages, sampling_messages
from reynolds.experiments.tools import register_experiment_tools
from reynolds.metrics import exposition
from reynolds.models import (
    POOL_NAME,
    AgentsView,
    Plan,
    Planning,
    PlanView,
    PoolView,
    ReplicaView,
    Strategy,
    SubtaskSpec,
    SubtaskState,
    SubtaskView,
    TaskList,
    TaskState,
    TaskView,
    WorkspaceSpec,
)
from reynolds.registry import Replica
from reynolds.scaling import ScaleResult
from reynolds.service import Service, running, scale
from reynolds.sessions import Endpoint

log = structlog.get_logger("reynolds.server")
SAMPLING_MAX_TOKENS = 4000
FATAL_NOTICE_S = 2.0  # how long /health reports a fatal failure before the process stops

INSTRUCTIONS = """Reynolds runs a plan (a DAG of tool calls) on pools of specialist agents, in parallel where the
graph allows, with retries, and reports progress and the result. Call list_agents to see which tools exist,
plan_task to check a plan without running it, orchestrate to run it."""


class Holder:
    """The running service, set by the app's lifespan (tools are declared before it exists), and why it
    failed, if it did (then the process is on its way out: ``serve`` exits non-zero)."""

    service: Service | None = None
    fatal: str | None = None
    stop: Callable[[], None] = staticmethod(lambda: signal.raise_signal(signal.SIGTERM))  # serve sets its own

    def get(self) -> Service:
        if self.fatal is not None:
            raise errors.ServiceUnavailable(f"Reynolds is stopping: {self.fatal}")
        if self.service is None:
            raise errors.ServiceUnavailable("Reynolds is starting up; try again in a moment")
        return self.service

    def fail(self, reason: str) -> None:
        """The service cannot run: remember why (/health says it at once) and, after a moment for probes to see
        it, ``stop`` the server: it drains, then ``serve`` exits non-zero."""
        self.fatal = reason
        asyncio.get_running_loop().call_later(FATAL_NOTICE_S, self.stop)


def client_server(holder: Holder, state_key: str, task_ttl_ms: int | None = None) -> MCPServer:
    tasks = mcp_tasks.Tasks(holder, own_task, reply, task_ttl_ms)
    mcp = MCPServer(
        "reynolds",
        version=__version__,
        instructions=INSTRUCTIONS,
        request_state_security=RequestStateSecurity(keys=[state_key]),
        extensions=[ui.task_app(), tasks],
        middleware=[tasks.middleware],
    )
    mcp_tasks.enable(mcp)  # MCP Tasks for handshake-era clients that ask (orchestrate with a `task` field)
    levels = Levels()
    answer_set_level(mcp, levels)  # logging/setLevel for handshake-era clients

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
        workspace: WorkspaceSpec | None = None,
    ) -> Annotated[CallToolResult, TaskView]:
        """Run a plan: a DAG of tool calls ({"subtasks": [{"id", "tool", "arguments", "depends_on", "pool"?}]}).
        Independent subtasks run in parallel on the pools whose agents offer the tools; an argument
        {"$from": "<dependency id>", "path": "a.b"} is replaced by that dependency's output. Without a plan,
        `goal` is planned: by your LLM through MCP sampling when your client offers it, otherwise by matching
        its words to tool names (the plan used is in the result). With wait=true (default) progress is
        reported and the finished task returned; wait=false returns at once with the task id (poll get_task).
        strategy: parallel | sequential | auto. priority: higher runs first. timeout_s fails the task when
        exceeded. track_in_github keeps a tracking issue with a checklist (needs REYNOLDS_GITHUB_* settings).
        workspace: the tree every step works on (tool paths are relative to it) — {"git": url, "ref": branch|tag|sha}
        (cloned once, pinned to the commit the result shows), {"project": name} (a copy of a directory under the
        projects root), or omitted (empty scratch). The source is never modified; the result shows the diff."""
        principal = require(ctx, "submit")
        plan, planning = await resolve_plan(plan, goal, draft, redraft)
        service = holder.get()
        task_id, planned = await service.engine.submit(
            plan,
            goal,
            strategy,
            priority,
            timeout_s,
            planning,
            track_in_github,
            submitter=principal.name,
            workspace=workspace,
        )
        if not wait:
            return reply(await service.engine.get_task(task_id))
        events = TaskLog(ctx, service.store, task_id, levels.get(session_key(ctx.request_context.request)))

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.report_progress(done, total, message)
            await events.flush()  # the events behind the new count, as log messages

        asks = any(s.requires_approval for s in planned.subtasks)  # else no approval query on the hot path
        view = await service.engine.wait(task_id, progress, until_approval=asks)
        await events.flush()
        if view.state == TaskState.RUNNING:  # a subtask waits for a person: the caller decides, not Reynolds
            view.message = awaiting_message(view)
        return reply(view)

    @mcp.tool()
    async def plan_task(
        ctx: Context,
        draft: Annotated[CreateMessageResult | None, Resolve(first_draft)],
        redraft: Annotated[CreateMessageResult | None, Resolve(second_draft)],
        plan: Plan | None = None,
        goal: Annotated[str | None, Field(max_length=10_000)] = None,
        strategy: Strategy = "parallel",
        workspace: WorkspaceSpec | None = None,
    ) -> PlanView:
        """Dry run: validate a plan (or plan a goal, as orchestrate would) and show what Reynolds would do — the
        pool of each subtask, the waves that can run together, the critical path and estimated makespan.
        A workspace is checked as orchestrate would (project inside the projects root, allowed git transport).
        Nothing is stored or executed."""
        require(ctx, "read")
        plan, planning = await resolve_plan(plan, goal, draft, redraft)
        service = holder.get()
        workspaces.check(service.settings, workspace)
        view = await service.engine.plan(plan, strategy)
        view.planning, view.workspace = planning, workspace
        return view

    @mcp.tool(meta=ui.TASK_APP_META)
    async def get_task(ctx: Context, task_id: str, include_events: bool = False) -> Annotated[CallToolResult, TaskView]:
        """Status of a task and each subtask: state, attempts, agent, timings, result or error. With
        include_events, also the task's event log (submission, retries with their errors, skips, refusals...)."""
        service = holder.get()
        await own_task(service, require(ctx, "read"), task_id)
        return reply(await service.engine.get_task(task_id, include_events))

    @mcp.tool()
    async def list_tasks(
        ctx: Context,
        state: TaskState | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> TaskList:
        """Your tasks (every task, for an admin token), newest first, optionally only those in one state; paged
        with limit/offset."""
        principal = require(ctx, "read")
        submitter = None if principal.allows("admin") else principal.name
        return await holder.get().engine.list_tasks(state, limit, offset, submitter)

    @mcp.tool()
    async def cancel_task(ctx: Context, task_id: str) -> Annotated[CallToolResult, TaskView]:
        """Cancel a running task: nothing more is dispatched, in-flight calls are cancelled, it ends cancelled."""
        service = holder.get()
        await own_task(service, require(ctx, "submit"), task_id)
        return reply(await service.engine.cancel(task_id))

    async def confirm(ctx: Context, task_id: str, subtask_id: str) -> Elicit[Confirmation] | None:
        """Ask the person at the client, when the client can show a question (elicitation, both eras)."""
        caps = ctx.client_capabilities
        if not (caps and caps.elicitation):
            return None  # the approve_subtask call is the decision
        service = holder.get()
        await own_task(service, require(ctx, "submit"), task_id)
        view = await service.engine.get_task(task_id)
        subtask = next((s for s in view.subtasks if s.id == subtask_id), None)
        if subtask is None or subtask.state != SubtaskState.AWAITING_APPROVAL:
            return None  # nothing to ask about: the tool says why
        return Elicit(approval_question(view, subtask), Confirmation)

    @mcp.tool()
    async def approve_subtask(
        ctx: Context,
        confirmed: Annotated[Confirmation | None, Resolve(confirm)],
        task_id: str,
        subtask_id: Annotated[str, Field(max_length=200)],
    ) -> Annotated[CallToolResult, TaskView]:
        """Approve a subtask that waits for approval (state awaiting_approval): it runs. When your client can
        ask its user (elicitation), Reynolds asks them first, showing what will run; declining approves nothing."""
        principal = require(ctx, "submit")
        service = holder.get()
        await own_task(service, principal, task_id)
        if confirmed is not None and not confirmed.approve:
            raise errors.InvalidRequest("not approved: the person said no (reject_subtask rejects it)")
        by = f"{principal.name} (confirmed by the user)" if confirmed is not None else principal.name
        return reply(await service.engine.decide(task_id, subtask_id, True, by))

    @mcp.tool()
    async def reject_subtask(
        ctx: Context,
        task_id: str,
        subtask_id: Annotated[str, Field(max_length=200)],
        reason: Annotated[str, Field(max_length=1000)] = "",
    ) -> Annotated[CallToolResult, TaskView]:
        """Reject a subtask that waits for approval: it is skipped, and so is everything that depends on it."""
        principal = require(ctx, "submit")
        service = holder.get()
        await own_task(service, principal, task_id)
        return reply(await service.engine.decide(task_id, subtask_id, False, principal.name, reason))

    @mcp.tool()
    async def list_agents(ctx: Context) -> AgentsView:
        """Pools and their replicas: health, circuit state, load, and the tools each pool offers."""
        require(ctx, "read")
        return await agents_view(holder.get())

    @mcp.tool()
    async def scale_pool(
        ctx: Context,
        pool: Annotated[str, Field(min_length=1, max_length=64)],
        replicas: Annotated[int, Field(ge=0, le=50)],
    ) -> ScaleResult:
        """Set the number of replicas of an agent pool (devops, platform, code) through the Docker API: on
        Compose, containers are added or removed like `docker compose up --scale`; on Swarm, the service is
        updated. New replicas register themselves; list_agents shows them within seconds. Needs an admin token."""
        require(ctx, "admin")
        return await scale(holder.get(), pool, replicas)

    @mcp.resource("reynolds://tasks/{task_id}", mime_type="application/json")
    async def task_resource(task_id: str, ctx: Context) -> str:
        """A task with all its subtasks, as JSON."""
        service = holder.get()
        await own_task(service, require(ctx, "read"), task_id)
        return (await service.engine.get_task(task_id)).model_dump_json()

    @mcp.resource("reynolds://tasks/{task_id}/workspace/{+path}", mime_type="application/json")
    async def workspace_file(task_id: str, path: str, ctx: Context) -> str:
        """One file of a task's workspace, as JSON {path, size_bytes, text} (UTF-8) or {..., base64} (anything
        else); confined to the task's tree and bounded by REYNOLDS_WORKSPACE_READ_MAX_BYTES."""
        service = holder.get()
        await own_task(service, require(ctx, "read"), task_id)
        return (await workspaces.read(service.settings, service.store, task_id, path)).model_dump_json()

    @mcp.resource("reynolds://agents", mime_type="application/json")
    async def agents_resource() -> str:
        """The agent fleet, as JSON. (The SDK gives a static resource no request context, so any client token
        reads it; the list_agents tool needs the read scope.)"""
        return (await agents_view(holder.get())).model_dump_json()

    register_experiment_tools(mcp, holder)
    return mcp


class Confirmation(BaseModel):
    approve: bool = Field(description="run this step")


QUESTION_ARGUMENTS_CHARS = 2000  # of a subtask's arguments shown in an approval question


def approval_question(view: TaskView, subtask: SubtaskView) -> str:
    arguments = json.dumps(subtask.arguments, ensure_ascii=False, sort_keys=True)
    if len(arguments) > QUESTION_ARGUMENTS_CHARS:
        arguments = arguments[:QUESTION_ARGUMENTS_CHARS] + "…"
    goal = f" for the goal {view.goal!r}" if view.goal else ""
    return (
        f"Reynolds asks before it runs step {subtask.id!r} of task {view.task_id}{goal}: the tool {subtask.tool}"
        f" on pool {subtask.pool} with arguments {arguments}. It waits for approval because the plan asked for"
        " it or the tool may change or delete things. Approve?"
    )


def awaiting_message(view: TaskView) -> str:
    waiting = ", ".join(s.id for s in view.subtasks if s.state == SubtaskState.AWAITING_APPROVAL)
    return (
        f"waiting for approval of {waiting}: call approve_subtask or reject_subtask with the task id and the"
        " subtask id, then get_task (or orchestrate's progress) to follow it"
    )


def reply(view: BaseModel) -> CallToolResult:
    """A tool's answer: the view as structured content, and the same as compact JSON in the text (a client
    that reads only text gets all of it, a third smaller than the SDK's indented dump)."""
    data = view.model_dump(mode="json", by_alias=True)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


async def own_task(service: Service, principal: Principal, task_id: str) -> None:
    """Pass if the caller may see the task: its submitter, or an admin. Another tenant's task gets the very
    answer a missing one gets, so ids cannot be probed."""
    try:
        uuid.UUID(task_id)
    except ValueError as err:
        raise errors.InvalidRequest(f"{task_id!r} is not a task id (a UUID)") from err
    exists, submitter = await service.store.task_submitter(task_id)
    if not exists or not (principal.allows("admin") or submitter == principal.name):
        raise errors.NotFound(f"no task {task_id}")


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
    lease: str = Field(description="this replica's secret: heartbeat, handoff and re-registration present it")


class Heartbeat(BaseModel):
    known: bool = Field(description="false: Reynolds has forgotten this replica; call register_agent again")


class HandoffResult(BaseModel):
    task_id: str
    added: list[str]


AGENT_ID = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
POOL = Field(pattern=rf"^{POOL_NAME}$")
LEASE = Field(min_length=1, max_length=128)


def agent_server(holder: Holder) -> MCPServer:
    mcp = MCPServer(
        "reynolds-agents",
        version=__version__,
        instructions="Endpoint for Reynolds agents: register, heartbeat, hand work off.",
    )

    @mcp.tool()
    async def register_agent(
        ctx: Context,
        agent_id: Annotated[str, AGENT_ID],
        pool: Annotated[str, POOL],
        agent_type: Annotated[str, Field(min_length=1, max_length=64)],
        url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)],
        max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 16,
        lease: Annotated[str | None, LEASE] = None,
    ) -> Registered:
        """Join the pool your token admits. Reynolds checks `url` against its agent networks, connects back with
        the pool's token and lists the replica's tools. The answer carries a lease; keep it: heartbeats and
        handoffs need it, and a live agent_id can be registered again only with it."""
        service = holder.get()
        admitted_pool(principal_of(ctx), pool)
        lease = lease or secrets.token_urlsafe(32)
        held = await service.registry.lease_holder(pool, agent_id)
        if held is not None and held != lease_hash(lease):
            raise id_taken(pool, agent_id)
        target = await egress.checked_url(url, service.settings.agent_networks)
        replica = Replica(
            agent_id=agent_id, pool=pool, agent_type=agent_type, url=target, max_concurrency=max_concurrency, tools=[]
        )
        replica.learn(await probe_tools(service, replica, url))
        if not await service.registry.claim(pool, agent_id, lease_hash(lease)):
            raise id_taken(pool, agent_id)
        service.sessions.drop(replica.key)  # a re-registration may come from a new process at the same id
        await service.registry.register(replica)
        log.info("agent registered", agent_id=agent_id, pool=pool, url=target, tools=len(replica.tools))
        return Registered(registered=True, pool=pool, tools=replica.tools, lease=lease)

    @mcp.tool()
    async def heartbeat(
        ctx: Context,
        agent_id: Annotated[str, AGENT_ID],
        pool: Annotated[str, POOL],
        lease: Annotated[str, LEASE],
        inflight: Annotated[int, Field(ge=0)] = 0,
    ) -> Heartbeat:
        """Keep a registration alive (call every few seconds, well inside the heartbeat TTL)."""
        admitted_pool(principal_of(ctx), pool)
        renewed = await holder.get().registry.renew(pool, agent_id, lease_hash(lease))
        if renewed < 0:
            raise id_taken(pool, agent_id)
        return Heartbeat(known=renewed > 0)

    @mcp.tool()
    async def handoff(
        ctx: Context,
        task_id: str,
        subtask_id: str,
        subtasks: Annotated[list[SubtaskSpec], Field(min_length=1)],
        agent_id: Annotated[str, AGENT_ID],
        lease: Annotated[str, LEASE],
    ) -> HandoffResult:
        """Ask Reynolds to add subtasks to the running task that `subtask_id` belongs to (e.g. hand a finding to
        another pool). Only the replica running `subtask_id` may (its agent_id and lease). Depth, repetition
        and fan-out are limited; refusals say which limit was hit."""
        service = holder.get()
        await running_on(service, principal_of(ctx), task_id, subtask_id, agent_id, lease)
        added = await service.engine.handoff(task_id, subtask_id, subtasks)
        return HandoffResult(task_id=task_id, added=added)

    return mcp


def lease_hash(lease: str) -> str:
    return hashlib.sha256(lease.encode()).hexdigest()


def admitted_pool(principal: Principal, pool: str) -> None:
    if principal.pool not in (ANY_POOL, pool):
        raise errors.Forbidden(f"this agent token admits pool {principal.pool!r}, not {pool!r}")


def id_taken(pool: str, agent_id: str) -> errors.Forbidden:
    return errors.Forbidden(
        f"agent id {agent_id!r} in pool {pool!r} belongs to a live replica with another lease; use a unique "
        "AGENT_ID, or wait until that registration expires (heartbeat TTL)"
    )


async def probe_tools(service: Service, replica: Replica, url: str) -> list[Tool]:
    """The replica's tools/list over a connection of its own (a live session under the same id is left alone).
    The error names the URL and the kind of failure only: whatever the URL answered is never echoed."""
    token = agent_token_for(service.settings, replica.pool)
    endpoint = Endpoint(f"registering/{replica.key}/{secrets.token_hex(4)}", url=replica.url, token=token)
    try:
        connection = await service.sessions.get(endpoint)
        return await connection.list_tools()
    except Exception as err:
        log.warning("registered URL did not list its tools", url=url, error=str(err)[:300])
        raise errors.AgentUnavailable(f"registered URL {url} did not answer MCP tools/list") from None
    finally:
        service.sessions.drop(endpoint.key)


async def running_on(
    service: Service, principal: Principal, task_id: str, subtask_id: str, agent_id: str, lease: str
) -> None:
    """Pass only for the replica running the subtask now: same pool as the token, same agent id, its lease.
    Every other case gets one answer, so a handoff cannot probe for tasks."""
    refused = errors.Forbidden(f"no running subtask {subtask_id!r} of task {task_id} on replica {agent_id!r}")
    try:
        uuid.UUID(task_id)
    except ValueError:
        raise refused from None
    runner = await service.store.subtask_runner(task_id, subtask_id)
    if runner is None or runner[1] != agent_id or runner[2] != SubtaskState.RUNNING:
        raise refused
    pool = runner[0]
    if principal.pool not in (ANY_POOL, pool):
        raise refused
    if await service.registry.lease_holder(pool, agent_id) != lease_hash(lease):
        raise refused


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


def build_app(settings: Settings | None = None, holder: Holder | None = None) -> ASGIApp:
    """The ASGI app; ``holder`` (made here if not given) tells the caller afterwards whether the service failed."""
    settings = settings or Settings()
    client_tokens = TokenTable(parse_client_tokens(settings.client_tokens))
    if not client_tokens:
        raise errors.InvalidRequest("no client token: set REYNOLDS_CLIENT_TOKENS_FILE ('<token> [name] [scopes]')")
    agent_tokens = agent_verifier(settings)
    holder = holder or Holder()
    ttl_ms = settings.retention_days * 86_400_000  # how long a finished task is kept (retention.py)
    clients, agents = client_server(holder, request_state_key(settings), ttl_ms), agent_server(holder)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
    )
    # handshake-era sessions live in one process: with several workers on one port that era goes sessionless
    stateless = settings.workers > 1
    client_app = clients.streamable_http_app(transport_security=security, host=settings.host, stateless_http=stateless)
    agent_app = agents.streamable_http_app(transport_security=security, host=settings.host, stateless_http=stateless)
    prometheus = CollectorRegistry()
    exported = exposition(prometheus)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            clients.session_manager.run(),
            agents.session_manager.run(),
            running(settings, prometheus, holder.fail) as svc,
        ):
            holder.service = svc
            await svc.ready()
            log.info("reynolds ready", host=settings.host, port=settings.port)
            try:
                yield
            finally:
                holder.service = None

    async def health(request: Request) -> JSONResponse:
        if holder.fatal is not None:
            return JSONResponse({"status": "failed", "reason": holder.fatal, "version": __version__}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    async def ready(request: Request) -> JSONResponse:
        if holder.service is None:
            return JSONResponse({"ready": False, "checks": {"service": "starting"}}, status_code=503)
        ok, checks = await holder.service.ready()
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(exported), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
            Mount("/agents", app=agent_app),
            ui.routes(holder, agents_view, own_task),
            Mount("/", app=client_app),
        ],
        lifespan=lifespan,
    )
    # the live view's JSON (/ui/api) takes the same client tokens, and the same tenancy, as /mcp
    return BearerAuth(app, {"/mcp": client_tokens, "/agents/mcp": agent_tokens, ui.API_PREFIX: client_tokens})
