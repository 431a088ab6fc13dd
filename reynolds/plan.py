"""Plan validation and scheduling order.

``build_plan`` turns a client's ``Plan`` into the DAG Reynolds will run, or raises a ``PlanError``
that names what is wrong (duplicate id, unknown dependency, the cycle, unknown tool, the limit).
``resolve_references`` fills ``{"$from": id, "path": "a.b"}`` placeholders at dispatch time.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reynolds import errors
from reynolds.models import Plan, PlannedSubtask, PlanView, Strategy

Catalog = Mapping[str, set[str]]  # tool name -> pools offering it
Estimator = Callable[[str, str], float]  # (pool, tool) -> expected seconds


def build_plan(
    plan: Plan,
    catalog: Catalog,
    *,
    max_subtasks: int,
    max_depth: int,
    max_argument_bytes: int,
    strategy: Strategy = "parallel",
    estimate: Estimator = lambda pool, tool: 1.0,
) -> PlanView:
    specs = plan.subtasks
    if len(specs) > max_subtasks:
        raise errors.LimitExceeded(f"plan has {len(specs)} subtasks; the limit (max_subtasks) is {max_subtasks}")
    ids: set[str] = set()
    for spec in specs:
        if spec.id in ids:
            raise errors.DuplicateSubtask(f"subtask id {spec.id!r} is used more than once")
        ids.add(spec.id)

    planned: dict[str, PlannedSubtask] = {}
    for spec in specs:
        size = len(json.dumps(spec.arguments, separators=(",", ":")))
        if size > max_argument_bytes:
            raise errors.LimitExceeded(
                f"arguments of subtask {spec.id!r} are {size} bytes; the limit (max_argument_bytes) is "
                f"{max_argument_bytes}"
            )
        depends_on = list(dict.fromkeys(spec.depends_on))
        for ref in references(spec.arguments):
            if ref not in ids:
                raise errors.BadReference(f"subtask {spec.id!r} reads from {ref!r}, which is not in the plan")
            if ref not in depends_on:
                depends_on.append(ref)  # reading a result implies waiting for it
        for dep in depends_on:
            if dep == spec.id:
                raise errors.CycleError(f"subtask {spec.id!r} depends on itself")
            if dep not in ids:
                raise errors.UnknownDependency(f"subtask {spec.id!r} depends on {dep!r}, which is not in the plan")
        planned[spec.id] = PlannedSubtask(
            id=spec.id,
            tool=spec.tool,
            pool=_pool_for(spec.id, spec.tool, spec.pool, catalog),
            arguments=spec.arguments,
            depends_on=depends_on,
            retryable=spec.retryable,
            timeout_s=spec.timeout_s,
            max_attempts=spec.max_attempts,
            rank=0.0,
        )

    order = _topological_order(planned)
    levels = _levels(planned, order)
    if len(levels) > max_depth:
        raise errors.LimitExceeded(f"plan is {len(levels)} subtasks deep; the limit (max_depth) is {max_depth}")

    cost = {sid: max(estimate(s.pool, s.tool), 0.001) for sid, s in planned.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in planned}
    for sid, s in planned.items():
        for dep in s.depends_on:
            dependents[dep].append(sid)
    best_next: dict[str, str | None] = {}
    for sid in reversed(order):  # longest remaining path, sinks first
        tail = max(dependents[sid], key=lambda d: planned[d].rank, default=None)
        best_next[sid] = tail
        planned[sid].rank = cost[sid] + (planned[tail].rank if tail else 0.0)

    total_work = sum(cost.values())
    start = max(planned.values(), key=lambda s: s.rank)
    critical = [start.id]
    while (nxt := best_next[critical[-1]]) is not None:
        critical.append(nxt)

    if strategy == "auto":
        # parallel only pays when the plan is wider than a chain: compare work to the critical path
        strategy = "parallel" if total_work > start.rank * 1.05 else "sequential"
    if strategy == "sequential":
        # descending rank is a topological order (a subtask outranks everything after it): critical first
        chain = sorted(order, key=lambda sid: -planned[sid].rank)
        for before, after in itertools.pairwise(chain):
            if before not in planned[after].depends_on:
                planned[after].after = [before]
    return PlanView(
        strategy=strategy,
        subtasks=[planned[sid] for sid in order],
        levels=levels,
        critical_path=critical,
        estimated_makespan_s=round(total_work if strategy == "sequential" else start.rank, 3),
        estimated_total_work_s=round(total_work, 3),
    )


def _pool_for(sid: str, tool: str, pool: str | None, catalog: Catalog) -> str:
    offered = catalog.get(tool, set())
    if pool is not None:
        if pool not in offered:
            where = f"; it is offered by {', '.join(sorted(offered))}" if offered else ""
            raise errors.UnknownTool(f"subtask {sid!r}: pool {pool!r} has no tool {tool!r}{where}")
        return pool
    if not offered:
        raise errors.UnknownTool(f"subtask {sid!r}: no registered pool offers tool {tool!r}")
    if len(offered) > 1:
        raise errors.AmbiguousTool(
            f'subtask {sid!r}: tool {tool!r} is offered by pools {", ".join(sorted(offered))}; set "pool"'
        )
    return next(iter(offered))


def _topological_order(planned: Mapping[str, PlannedSubtask]) -> list[str]:
    """Kahn's algorithm, keeping plan order among equals; on a cycle, name it."""
    indegree = {sid: len(s.depends_on) for sid, s in planned.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in planned}
    for sid, s in planned.items():
        for dep in s.depends_on:
            dependents[dep].append(sid)
    ready = deque(sid for sid, n in indegree.items() if n == 0)
    order: list[str] = []
    while ready:
        sid = ready.popleft()
        order.append(sid)
        for d in dependents[sid]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    if len(order) < len(planned):
        raise errors.CycleError(
            f"plan has a dependency cycle (each depends on the next): {' -> '.join(_find_cycle(planned, indegree))}"
        )
    return order


def _find_cycle(planned: Mapping[str, PlannedSubtask], indegree: Mapping[str, int]) -> list[str]:
    # every node left with indegree > 0 sits on or behind a cycle; walking dependencies must loop
    start = next(sid for sid, n in indegree.items() if n > 0)
    seen: dict[str, int] = {}
    path: list[str] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(dep for dep in planned[node].depends_on if indegree[dep] > 0)
    cycle = path[seen[node] :]
    return [*cycle, cycle[0]]


def _levels(planned: Mapping[str, PlannedSubtask], order: list[str]) -> list[list[str]]:
    level: dict[str, int] = {}
    for sid in order:
        level[sid] = 1 + max((level[d] for d in planned[sid].depends_on), default=-1)
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for sid in order:
        waves[level[sid]].append(sid)
    return waves


def references(value: Any) -> Iterator[str]:
    """Ids named by ``{"$from": ...}`` placeholders anywhere inside ``value``."""
    if isinstance(value, dict):
        if "$from" in value:
            yield str(value["$from"])
            return
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def resolve_references(value: Any, outputs: Mapping[str, Any]) -> Any:
    """``value`` with every placeholder replaced by the named part of a dependency's output."""
    if isinstance(value, dict):
        if "$from" in value:
            source = str(value["$from"])
            return extract(outputs[source], str(value.get("path", "")), source)
        return {k: resolve_references(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, outputs) for v in value]
    return value


def extract(output: Any, path: str, source: str) -> Any:
    """Follow a dotted path (``a.b.0``) into ``output``; a missing step is a BadReference."""
    current = output
    for step in [p for p in path.split(".") if p]:
        if isinstance(current, dict) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit() and -len(current) <= int(step) < len(current):
            current = current[int(step)]
        else:
            raise errors.BadReference(f"output of {source!r} has no {path!r} (stopped at {step!r})")
    return current
