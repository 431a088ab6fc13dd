"""Experiment strategies: what each name in a scenario's `strategies` changes about a run.

- ``sequential`` and ``parallel`` are the planner's own.
- ``hybrid:K`` caps a task at K subtasks running at once without any change to dispatching: the plan, in its
  topological order, is dealt round-robin into K lanes and each subtask waits (``after``, ordering only) for
  the one before it in its lane. A lane runs one subtask at a time, so at most K run; since every edge, real
  or added, points forward in one topological order, the graph stays acyclic. A failed lane predecessor
  releases its successor as ``after`` always does; only real dependencies skip.
- ``pool:NAME`` is a routing variant: every subtask runs on pool NAME (one generalist pool) instead of the
  pool its tool or the plan names (the specialised pools). Planning refuses it, naming the subtask, when
  NAME does not offer a tool the plan uses.
- ``replicas:POOL=N`` runs the plan in parallel with POOL scaled to N replicas first (Docker; the runner
  scales, waits for the replicas to register, and restores the pool's size when the experiment ends).

``plan_shape`` names a plan's structure (tools and dependency edges in plan order, not arguments), so what
an experiment learned about one shape can steer later tasks of the same shape (``strategy=auto``). Only
strategies ``auto`` can apply by itself are learned: routing and replica counts change the deployment."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import asyncpg

from reynolds.models import POOL_NAME, Plan, PlanView, Strategy
from reynolds.plan import references
from reynolds.scaling import MAX_REPLICAS

STRATEGY_PATTERN = (
    rf"^(sequential|parallel|hybrid:[1-9][0-9]{{0,2}}|pool:{POOL_NAME}|replicas:{POOL_NAME}=[1-9][0-9]?)$"
)


@dataclass(frozen=True)
class StrategySpec:
    mode: Strategy  # how the planner orders the plan
    lanes: int | None = None  # hybrid:K
    pool: str | None = None  # pool:NAME: every subtask on this pool
    replicas: tuple[str, int] | None = None  # replicas:POOL=N: the pool scaled to N for the run

    @property
    def learnable(self) -> bool:
        """Whether ``strategy=auto`` could apply it to a later task on its own."""
        return self.pool is None and self.replicas is None


def parse_strategy(name: str) -> StrategySpec:
    """``"hybrid:3"`` -> parallel in 3 lanes; ``"pool:general"`` -> parallel on pool general; ``"replicas:code=3"``
    -> parallel with pool code at 3 replicas. ValueError for anything else (scenarios check the pattern first)."""
    if not re.fullmatch(STRATEGY_PATTERN, name):
        raise ValueError(f"unknown strategy {name!r}")
    kind, _, value = name.partition(":")
    if kind == "hybrid":
        return StrategySpec("parallel", lanes=int(value))
    if kind == "pool":
        return StrategySpec("parallel", pool=value)
    if kind == "replicas":
        pool, _, count = value.partition("=")
        if int(count) > MAX_REPLICAS:
            raise ValueError(f"strategy {name!r}: at most {MAX_REPLICAS} replicas")
        return StrategySpec("parallel", replicas=(pool, int(count)))
    return StrategySpec(kind)  # type: ignore[arg-type]


def routed(plan: Plan, spec: StrategySpec) -> Plan:
    """The plan as the strategy routes it: with ``pool:NAME``, every subtask on pool NAME."""
    if spec.pool is None:
        return plan
    subtasks = [s.model_copy(update={"pool": spec.pool}) for s in plan.subtasks]
    return plan.model_copy(update={"subtasks": subtasks})


def chain_lanes(view: PlanView, lanes: int | None) -> PlanView:
    """The view with each subtask also waiting for the previous subtask in its lane (no-op without lanes)."""
    if not lanes or view.strategy != "parallel":
        return view
    last: dict[int, str] = {}
    for i, s in enumerate(view.subtasks):  # view.subtasks is in topological order
        lane = i % lanes
        before = last.get(lane)
        if before is not None and before not in s.depends_on and before not in s.after:
            s.after = [*s.after, before]
        last[lane] = s.id
    return view


def plan_shape(plan: Plan) -> str:
    """A stable hash of the DAG's structure: each subtask's tool and the positions of its dependencies
    (``$from`` references included, since they are dependencies too)."""
    index = {s.id: i for i, s in enumerate(plan.subtasks)}
    nodes = [
        [s.tool, sorted({index.get(d, -1) for d in [*s.depends_on, *references(s.arguments)]})] for s in plan.subtasks
    ]
    return hashlib.sha256(json.dumps(nodes, separators=(",", ":")).encode()).hexdigest()[:32]


async def learned_strategy(pool: asyncpg.Pool, plan: Plan, lanes: int | None) -> tuple[Strategy, int | None]:
    """For strategy=auto: the strategy an experiment found best for this plan's shape, else auto as it is."""
    remembered = await pool.fetchval("SELECT strategy FROM strategy_memory WHERE shape = $1", plan_shape(plan))
    spec = parse_strategy(remembered) if remembered else None
    return (spec.mode, spec.lanes) if spec and spec.learnable else ("auto", lanes)
