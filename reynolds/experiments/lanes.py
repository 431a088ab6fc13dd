"""Strategies the dispatcher already understands, built from ordering-only edges.

``hybrid:K`` caps a task at K subtasks running at once without any change to dispatching: the plan, in its
topological order, is dealt round-robin into K lanes and each subtask waits (``after``, ordering only) for
the one before it in its lane. A lane runs one subtask at a time, so at most K run; since every edge, real or
added, points forward in one topological order, the graph stays acyclic. A failed lane predecessor releases
its successor as ``after`` always does; only real dependencies skip.

``plan_shape`` names a plan's structure (tools and dependency edges in plan order, not arguments), so what
an experiment learned about one shape can steer later tasks of the same shape (``strategy=auto``)."""

from __future__ import annotations

import hashlib
import json

import asyncpg

from reynolds.models import Plan, PlanView, Strategy
from reynolds.plan import references


def parse_strategy(name: str) -> tuple[Strategy, int | None]:
    """``"hybrid:3"`` -> ("parallel", 3); ``"sequential"`` -> ("sequential", None)."""
    if name.startswith("hybrid:"):
        return "parallel", int(name.split(":", 1)[1])
    return name, None  # type: ignore[return-value]


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
    return parse_strategy(remembered) if remembered else ("auto", lanes)
