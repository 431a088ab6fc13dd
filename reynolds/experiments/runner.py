"""Running experiments: each run is an ordinary task submitted through ``Engine.submit``, one at a time (so
runs do not disturb each other), strategies interleaved across repetitions to spread machine noise.

The state lives in Postgres, so a crash loses nothing: an experiment is driven by whichever Reynolds process
holds its lease, and when a process dies its lease lapses and the next one (or the restarted one) resumes it.
A run whose task was already submitted is adopted, not submitted again — found by its id, or, if the crash
came between submitting and recording, by the task's goal, which names the run."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import anyio
import asyncpg
import structlog

from reynolds import errors
from reynolds.experiments import stats
from reynolds.experiments.measure import measure
from reynolds.experiments.scenario import METRICS, Scenario
from reynolds.experiments.strategies import StrategySpec, parse_strategy, plan_shape, routed
from reynolds.models import TERMINAL_TASK_STATES, Plan, TaskState, WorkspaceSpec
from reynolds.scaling import check_scalable, scale_pool

if TYPE_CHECKING:
    from reynolds.service import Service

log = structlog.get_logger("reynolds.experiments")
POLL_S = 0.5  # how often an idle runner looks for an experiment to drive
LOWER_IS_BETTER = {"makespan_s", "retries", "overhead_s"}
RESTORE_BOUND_S = 120.0  # putting pools back, even while the process stops


class ExperimentState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def run_order(strategies: list[str], repetitions: int) -> list[tuple[str, int]]:
    """(strategy, repetition) in run order: every repetition runs each strategy once, the order rotated by one
    each time, so no strategy always goes first (warm caches) or last."""
    k = len(strategies)
    return [(strategies[(rep + i) % k], rep) for rep in range(repetitions) for i in range(k)]


def run_goal(experiment_id: str, seq: int, strategy: str) -> str:
    return f"experiment {experiment_id} run {seq} ({strategy})"


async def create(service: Service, scenario: Scenario, submitter: str | None = None) -> str:
    """Check the workload against every strategy (tools, limits), then store the experiment and its runs."""
    plan = scenario.workload.resolve()
    for name in scenario.strategies:
        spec = parse_strategy(name)
        await service.engine.plan(routed(plan, spec), spec.mode, spec.lanes)  # a PlanError names what is wrong
        if spec.replicas:
            await _check_replicas(service, name, spec.replicas[0])
    experiment_id = str(uuid.uuid4())
    async with service.store.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO experiments (id, name, scenario, plan, shape, state, submitter)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            experiment_id,
            scenario.name,
            scenario.model_dump(mode="json"),
            plan.model_dump(mode="json"),
            plan_shape(plan),
            ExperimentState.RUNNING.value,
            submitter,
        )
        await conn.executemany(
            "INSERT INTO experiment_runs (experiment_id, seq, strategy, repetition) VALUES ($1, $2, $3, $4)",
            [
                (experiment_id, seq, s, rep)
                for seq, (s, rep) in enumerate(run_order(scenario.strategies, scenario.repetitions))
            ],
        )
    log.info("experiment created", experiment_id=experiment_id, name=scenario.name)
    return experiment_id


async def _check_replicas(service: Service, name: str, pool: str) -> None:
    """A replicas strategy needs a pool Docker can scale, and one the autoscaler leaves alone."""
    if service.settings.autoscale and pool in service.settings.autoscale_pools:
        raise errors.InvalidRequest(f"strategy {name!r}: pool {pool!r} is autoscaled (REYNOLDS_AUTOSCALE)")
    try:
        await anyio.to_thread.run_sync(check_scalable, pool, service.settings.compose_project)
    except errors.ReynoldsError as err:
        raise errors.InvalidRequest(f"strategy {name!r} scales pool {pool!r}: {err}") from None


async def cancel(service: Service, experiment_id: str) -> bool:
    """Stop an experiment and cancel the tasks of its runs that are still going. False if it had ended."""
    pool = service.store.pool
    if (
        await pool.fetchval(
            "UPDATE experiments SET state = 'cancelled', finished_at = now(), error = 'cancelled by request'"
            " WHERE id = $1 AND state = 'running' RETURNING true",
            experiment_id,
        )
        is None
    ):
        return False
    rows = await pool.fetch(
        "SELECT r.task_id::text AS task_id FROM experiment_runs r JOIN tasks t ON t.id = r.task_id"
        " WHERE r.experiment_id = $1 AND t.state = 'running'",
        experiment_id,
    )
    for r in rows:
        await service.engine.cancel(r["task_id"], "experiment cancelled")
    return True


class ExperimentRunner:
    """The loop that drives experiments. One per Reynolds process; leases keep two from driving the same one."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.pool = service.store.pool
        self.owner = f"experiments-{uuid.uuid4().hex[:12]}"
        self.lease_s = service.settings.experiment_lease_s

    async def run(self) -> None:
        while True:
            busy = False
            try:
                experiment_id = await self._claim()
                busy = experiment_id is not None
                if experiment_id:
                    await self._drive(experiment_id)
            except Exception as err:  # a database hiccup must not end the loop; the lease lets it resume
                log.warning("experiment runner failed", error=repr(_innermost(err)))
            if not busy:
                await anyio.sleep(POLL_S)

    async def _claim(self) -> str | None:
        return await self.pool.fetchval(
            "UPDATE experiments SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)"
            " WHERE id = (SELECT id FROM experiments WHERE state = 'running'"
            "   AND (lease_until IS NULL OR lease_until < now()) ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id::text",
            self.owner,
            self.lease_s,
        )

    async def _renew(self, experiment_id: str) -> None:
        while True:
            await anyio.sleep(self.lease_s / 3)
            await self.pool.execute(
                "UPDATE experiments SET lease_until = now() + make_interval(secs => $3)"
                " WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                experiment_id,
                self.owner,
                self.lease_s,
            )

    async def _drive(self, experiment_id: str) -> None:
        row = await self.pool.fetchrow("SELECT scenario, plan FROM experiments WHERE id = $1", experiment_id)
        scenario, plan = Scenario.model_validate(row["scenario"]), Plan.model_validate(row["plan"])
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew, experiment_id)
            try:
                await self._runs(experiment_id, scenario, plan)
            except errors.InvalidRequest as err:  # the workload no longer runs here (e.g. a tool went away)
                await self._end(experiment_id, ExperimentState.FAILED, None, str(err))
            finally:  # ended, cancelled meanwhile, or this process is stopping: the pools go back
                with anyio.CancelScope(shield=True), anyio.move_on_after(RESTORE_BOUND_S):
                    await self._restore(experiment_id)
            tg.cancel_scope.cancel()

    async def _runs(self, experiment_id: str, scenario: Scenario, plan: Plan) -> None:
        pending = await self.pool.fetch(
            "SELECT seq, strategy, task_id::text AS task_id FROM experiment_runs"
            " WHERE experiment_id = $1 AND measures IS NULL ORDER BY seq",
            experiment_id,
        )
        for run in pending:
            if not await self._still_running(experiment_id):
                return
            task_id = run["task_id"] or await self._adopt_or_submit(
                experiment_id, run["seq"], run["strategy"], plan, scenario
            )
            if task_id is None:
                return  # cancelled while submitting
            await self._finish_run(experiment_id, run["seq"], task_id, scenario.timeout_s)
        if await self._still_running(experiment_id):
            report = await build_report(self.pool, experiment_id, scenario)
            await self._remember(experiment_id, report)
            await self._end(experiment_id, ExperimentState.SUCCEEDED, report, None)

    async def _adopt_or_submit(
        self, experiment_id: str, seq: int, name: str, plan: Plan, scenario: Scenario
    ) -> str | None:
        goal = run_goal(experiment_id, seq, name)
        task_id = await self.pool.fetchval("SELECT id::text FROM tasks WHERE goal = $1", goal)
        if task_id is None:
            submitter = await self.pool.fetchval("SELECT submitter FROM experiments WHERE id = $1", experiment_id)
            task_id = await self._submit(experiment_id, plan, goal, name, scenario, submitter)
        state = await self.pool.fetchval(
            "WITH r AS (UPDATE experiment_runs SET task_id = $3 WHERE experiment_id = $1 AND seq = $2)"
            " SELECT state FROM experiments WHERE id = $1",
            experiment_id,
            seq,
            uuid.UUID(task_id),
        )
        if state != ExperimentState.RUNNING:  # cancelled between our check and the submission: its tasks must stop too
            await self.service.engine.cancel(task_id, "experiment cancelled")
            return None
        return task_id

    async def _submit(
        self, experiment_id: str, plan: Plan, goal: str, name: str, scenario: Scenario, submitter: str | None
    ) -> str:
        """Submit one run. Right after a restart the agents have not re-registered yet, so a missing tool is
        waited for (up to the run's timeout) before it fails the experiment."""
        spec = parse_strategy(name)
        deadline = anyio.current_time() + scenario.timeout_s
        workspace = WorkspaceSpec.model_validate(scenario.workspace) if scenario.workspace else None
        await self._scale_for(experiment_id, spec, scenario.timeout_s)
        while True:
            try:  # each run gets its own workspace from the scenario's source
                task_id, _ = await self.service.engine.submit(
                    routed(plan, spec), goal, spec.mode, submitter=submitter, lanes=spec.lanes, workspace=workspace
                )
                return task_id
            except errors.UnknownTool:
                if anyio.current_time() > deadline:
                    raise
                await anyio.sleep(POLL_S)

    async def _scale_for(self, experiment_id: str, spec: StrategySpec, timeout_s: float) -> None:
        """Scale the pool a replicas strategy names, remember its first size, and wait until exactly that
        many replicas are registered (removed ones drop out when their heartbeats lapse)."""
        if spec.replicas is None:  # runs of other strategies see the pools as the experiment found them
            for pool, replicas in (await self._restore(experiment_id)).items():
                await self._await_replicas(experiment_id, pool, replicas, timeout_s)
            return
        pool, replicas = spec.replicas
        try:
            result = await anyio.to_thread.run_sync(scale_pool, pool, replicas, self.service.settings.compose_project)
        except errors.ReynoldsError as err:  # Docker went away or refused: the experiment cannot go on
            raise errors.InvalidRequest(f"could not scale pool {pool!r} to {replicas}: {err}") from None
        await self.pool.execute(
            "UPDATE experiments SET restore = coalesce(restore, '{}') || jsonb_build_object($2::text, $3::int)"
            " WHERE id = $1 AND NOT coalesce(restore, '{}') ? $2",
            experiment_id,
            pool,
            result.previous,
        )
        await self._await_replicas(experiment_id, pool, replicas, timeout_s)

    async def _await_replicas(self, experiment_id: str, pool: str, replicas: int, timeout_s: float) -> None:
        """Until exactly ``replicas`` of ``pool`` are registered (removed ones drop out when their heartbeats
        lapse), the experiment stops running, or ``timeout_s`` passes (InvalidRequest: it fails)."""
        registry = self.service.registry
        with anyio.move_on_after(timeout_s):
            while await self._still_running(experiment_id):
                registry.forget_cache()
                if len(await registry.replicas(pool)) == replicas:
                    return
                await anyio.sleep(POLL_S)
            return
        raise errors.InvalidRequest(f"pool {pool!r} did not reach {replicas} registered replicas in {timeout_s:g} s")

    async def _restore(self, experiment_id: str) -> dict[str, int]:
        """Put back the pools replicas strategies scaled, and return what was put back. A failure is logged
        and the sizes stay recorded, so a later restore tries again."""
        restore = await self.pool.fetchval("SELECT restore FROM experiments WHERE id = $1", experiment_id)
        for pool, replicas in (restore or {}).items():
            try:
                await anyio.to_thread.run_sync(scale_pool, pool, replicas, self.service.settings.compose_project)
            except errors.ReynoldsError as err:
                log.warning("could not restore pool size", pool=pool, replicas=replicas, error=str(err))
                return {}
        await self.pool.execute("UPDATE experiments SET restore = NULL WHERE id = $1", experiment_id)
        return restore or {}

    async def _finish_run(self, experiment_id: str, seq: int, task_id: str, timeout_s: float) -> None:
        engine = self.service.engine
        view = await engine.wait(task_id, None, timeout_s)
        if view.state not in TERMINAL_TASK_STATES:
            await engine.cancel(task_id, "experiment run timed out (scenario timeout_s)", final_state=TaskState.FAILED)
        if not await self._still_running(experiment_id):
            return
        measures = await measure(self.pool, task_id)
        await self.pool.execute(
            "UPDATE experiment_runs SET measures = $3 WHERE experiment_id = $1 AND seq = $2",
            experiment_id,
            seq,
            measures,
        )

    async def _still_running(self, experiment_id: str) -> bool:
        return (
            await self.pool.fetchval("SELECT state FROM experiments WHERE id = $1", experiment_id)
            == ExperimentState.RUNNING
        )

    async def _remember(self, experiment_id: str, report: dict[str, Any]) -> None:
        winner = report.get("winner")
        if winner and winner.get("remembered"):
            await self.pool.execute(
                "INSERT INTO strategy_memory (shape, strategy, experiment_id)"
                " SELECT shape, $2, id FROM experiments WHERE id = $1"
                " ON CONFLICT (shape) DO UPDATE SET strategy = excluded.strategy,"
                " experiment_id = excluded.experiment_id, updated_at = now()",
                experiment_id,
                winner["strategy"],
            )

    async def _end(
        self, experiment_id: str, state: ExperimentState, report: dict[str, Any] | None, error: str | None
    ) -> None:
        await self._restore(experiment_id)
        await self.pool.execute(
            "UPDATE experiments SET state = $2, report = $3, error = $4, finished_at = now(), lease_owner = NULL"
            " WHERE id = $1 AND state = 'running'",
            experiment_id,
            state,
            report,
            error,
        )
        log.info("experiment finished", experiment_id=experiment_id, state=state)


async def build_report(pool: asyncpg.Pool, experiment_id: str, scenario: Scenario) -> dict[str, Any]:
    rows = await pool.fetch(
        "SELECT seq, strategy, repetition, task_id::text AS task_id, measures FROM experiment_runs"
        " WHERE experiment_id = $1 ORDER BY seq",
        experiment_id,
    )
    runs = [dict(r) for r in rows]
    return report(scenario, runs)


def report(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of finished runs: per-metric summaries and pairwise tests, the verdict and the winner."""
    measured = [r for r in runs if r["measures"]]
    by_metric = {
        m: {s: [r["measures"][m] for r in measured if r["strategy"] == s] for s in scenario.strategies} for m in METRICS
    }
    claimed = [c.metric for c in scenario.hypothesis.claims] if scenario.hypothesis else []
    shown = list(dict.fromkeys([*scenario.metrics, *claimed]))
    return {
        "name": scenario.name,
        "strategies": scenario.strategies,  # in the scenario's order (stored JSON objects do not keep one)
        "significance": scenario.significance,
        "runs": [{k: r[k] for k in ("seq", "strategy", "repetition", "task_id", "measures")} for r in runs],
        "metrics": {m: {s: stats.summary(v) for s, v in by_metric[m].items()} for m in shown},
        "pairs": {m: stats.pairs(by_metric[m]) for m in shown},
        "hypothesis": stats.verdict(scenario.hypothesis, by_metric, scenario.significance)
        if scenario.hypothesis
        else None,
        "winner": winner(by_metric, scenario),
        "warnings": stats.warnings(by_metric["makespan_s"]),
    }


def winner(by_metric: dict[str, dict[str, list[float]]], scenario: Scenario) -> dict[str, Any] | None:
    """The best strategy on the hypothesis's first metric (else makespan), remembered only if it is
    significantly better than every other one and loses nothing in success rate."""
    metric = scenario.hypothesis.claims[0].metric if scenario.hypothesis else "makespan_s"
    samples = by_metric[metric]
    means = {s: sum(v) / len(v) for s, v in samples.items() if v}
    if len(means) < 2:
        return None
    best = (min if metric in LOWER_IS_BETTER else max)(means, key=lambda s: means[s])
    ps = [stats.compare(samples[best], samples[s])["welch_p"] for s in means if s != best]
    success = {s: sum(v) / len(v) for s, v in by_metric["success_rate"].items() if v}
    keeps_success = all(success[best] >= rate for rate in success.values())
    significant = all(p is not None and p < scenario.significance for p in ps)
    learnable = parse_strategy(best).learnable  # routing and replica counts are the deployment's, not auto's
    return {
        "strategy": best,
        "metric": metric,
        "p_values": ps,
        "remembered": significant and keeps_success and learnable,
    }


def _innermost(err: BaseException) -> BaseException:
    while isinstance(err, BaseExceptionGroup):
        err = err.exceptions[0]
    return err
