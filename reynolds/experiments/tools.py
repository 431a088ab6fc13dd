"""The experiment tools on Reynolds' client endpoint. Thin: validate, hand to the runner, read back.

No ``from __future__ import annotations``: the SDK reads these tools' annotations at registration."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import asyncpg
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from reynolds import errors
from reynolds.auth import Principal, allowed, require
from reynolds.experiments import runner
from reynolds.experiments import scenario as scenarios
from reynolds.experiments.report import markdown
from reynolds.experiments.runner import ExperimentState
from reynolds.experiments.strategies import parse_strategy

if TYPE_CHECKING:
    from reynolds.server import Holder

PROGRESS_POLL_S = 0.5


class RunView(BaseModel):
    seq: int
    strategy: str
    repetition: int
    task_id: str | None
    measures: dict[str, Any] | None = Field(description="null until the run's task has ended")


class ExperimentView(BaseModel):
    experiment_id: str
    name: str
    state: ExperimentState
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    runs_total: int
    runs_done: int
    runs: list[RunView]
    report: dict[str, Any] | None = Field(description="statistics, verdict and winner once every run has ended")
    markdown: str | None = Field(description="the report as Markdown")


class ExperimentSummary(BaseModel):
    experiment_id: str
    name: str
    state: ExperimentState
    created_at: datetime
    finished_at: datetime | None


class ExperimentList(BaseModel):
    experiments: list[ExperimentSummary]
    total: int = Field(description="experiments in all (of that state)")


def register_experiment_tools(mcp: MCPServer, holder: "Holder") -> None:
    @mcp.tool()
    async def run_experiment(
        ctx: Context,
        # JSON text arrives already parsed (the SDK decodes JSON-looking string arguments): both are accepted
        scenario: Annotated[str, Field(max_length=scenarios.MAX_SCENARIO_BYTES)] | dict[str, Any] | None = None,
        file: Annotated[str | None, Field(max_length=120)] = None,
        wait: bool = True,
    ) -> ExperimentView:
        """Run a what-if experiment: one workload under several strategies (sequential, parallel, hybrid:K = at
        most K subtasks at once, pool:NAME = every subtask on one generalist pool, replicas:POOL=N = POOL scaled
        to N replicas: needs Docker and the admin scope), each run an ordinary task, strategies interleaved
        across repetitions. Give the scenario as YAML/JSON text (`scenario`) or the name of a file in the
        experiments directory (`file`). With wait=true, progress is reported per finished run and the report
        returned; wait=false returns the id at once (poll get_experiment). Measures come from Reynolds' own
        records; statistics from scipy."""
        principal = require(ctx, "submit")
        service = holder.get()
        if (scenario is None) == (file is None):
            raise errors.InvalidRequest("give exactly one of scenario (YAML text) or file (a name in experiments/)")
        text = scenario if file is None else scenarios.read_file(service.settings.experiments_dir, file)
        parsed = scenarios.parse(text)
        if any(parse_strategy(name).replicas for name in parsed.strategies):
            allowed(principal, "admin")  # it resizes shared pools, as scale_pool does
        experiment_id = await runner.create(service, parsed, principal.name)
        if not wait:
            return await view(service.store.pool, experiment_id, principal)
        return await follow(service.store.pool, experiment_id, principal, ctx.report_progress)

    @mcp.tool()
    async def get_experiment(ctx: Context, experiment_id: str) -> ExperimentView:
        """An experiment: state, every run (strategy, task id, measures) and, once done, the report with its
        statistics, hypothesis verdict and winner, also as Markdown."""
        return await view(holder.get().store.pool, experiment_id, require(ctx, "read"))

    @mcp.tool()
    async def list_experiments(
        ctx: Context,
        state: ExperimentState | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> ExperimentList:
        """Experiments, newest first, optionally only those in one state; paged with limit/offset. A token sees
        the experiments it started (an admin token sees all)."""
        principal = require(ctx, "read")
        submitter = None if principal.allows("admin") else principal.name
        return await summaries(holder.get().store.pool, limit, submitter, state, offset)

    @mcp.tool()
    async def cancel_experiment(ctx: Context, experiment_id: str) -> ExperimentView:
        """Stop an experiment: no further runs start and the task of the run in progress is cancelled."""
        principal = require(ctx, "submit")
        service = holder.get()
        await view(service.store.pool, experiment_id, principal)  # validates the id, existence and owner first
        await runner.cancel(service, experiment_id)
        return await view(service.store.pool, experiment_id, principal)


async def summaries(
    pool: asyncpg.Pool, limit: int, submitter: str | None, state: str | None = None, offset: int = 0
) -> ExperimentList:
    """Experiments newest first (``submitter``'s, or everyone's for None), and how many there are in all."""
    where = " WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR submitter = $2)"
    rows = await pool.fetch(
        "SELECT id::text AS experiment_id, name, state, created_at, finished_at FROM experiments"
        + where
        + " ORDER BY created_at DESC LIMIT $3 OFFSET $4",
        state,
        submitter,
        limit,
        offset,
    )
    total = await pool.fetchval("SELECT count(*) FROM experiments" + where, state, submitter)
    return ExperimentList(experiments=[ExperimentSummary(**dict(r)) for r in rows], total=total)


async def follow(
    pool: asyncpg.Pool,
    experiment_id: str,
    principal: Principal,
    progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None,
) -> ExperimentView:
    """Report progress (runs finished / runs) until the experiment ends; then its view."""
    last = -1
    while True:
        current = await view(pool, experiment_id, principal)
        if current.runs_done != last and progress is not None:
            last = current.runs_done
            await progress(last, current.runs_total, f"{last}/{current.runs_total} runs finished")
        if current.state != ExperimentState.RUNNING:
            return current
        await anyio.sleep(PROGRESS_POLL_S)


async def view(pool: asyncpg.Pool, experiment_id: str, principal: Principal) -> ExperimentView:
    """An experiment as ``principal`` may see it: another tenant's gets the same answer as a missing one."""
    try:
        uuid.UUID(experiment_id)
    except ValueError:
        raise errors.InvalidRequest(f"{experiment_id!r} is not an experiment id (a UUID)") from None
    row = await pool.fetchrow(
        "SELECT id::text AS experiment_id, name, state, error, created_at, finished_at, report, submitter"
        " FROM experiments WHERE id = $1::uuid",
        experiment_id,
    )
    if row is None or not (principal.allows("admin") or row["submitter"] == principal.name):
        raise errors.NotFound(f"no experiment {experiment_id}")
    runs = await pool.fetch(
        "SELECT seq, strategy, repetition, task_id::text AS task_id, measures FROM experiment_runs"
        " WHERE experiment_id = $1::uuid ORDER BY seq",
        experiment_id,
    )
    report = row["report"]
    return ExperimentView(
        **{k: row[k] for k in ("experiment_id", "name", "state", "error", "created_at", "finished_at")},
        runs_total=len(runs),
        runs_done=sum(r["measures"] is not None for r in runs),
        runs=[RunView(**dict(r)) for r in runs],
        report=report,
        markdown=markdown(report) if report else None,
    )
