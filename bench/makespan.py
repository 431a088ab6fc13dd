"""Makespan against the critical path: a seeded random DAG of workbench ``sleep`` subtasks, with enough
replica slots that the graph's width never waits for a free slot, so the best possible makespan is the
critical path (the longest chain of sleeps). What Reynolds adds shows as makespan / critical path.

    .venv/bin/python -m bench.makespan --nodes 50 --seed 7 --replicas 4
"""

from __future__ import annotations

import random
import time
from typing import Any

import anyio

from bench.common import (
    AGENT_MAX_CONCURRENCY,
    arguments,
    bench_cluster,
    check_succeeded,
    deadline,
    emit,
    machine,
    ms,
    parse_time,
    percentile,
    positive,
    settings,
    start_workbench,
)
from reynolds.client import call
from tests.integration.cluster import Cluster, Proc

TARGET_RATIO = 1.10


def random_dag(nodes: int, seed: int, edge_probability: float) -> list[dict[str, Any]]:
    """Nodes n0..n{nodes-1}; each earlier node is a parent with ``edge_probability``; sleeps 0.2-1.0 s."""
    rng = random.Random(seed)
    subtasks = []
    for j in range(nodes):
        parents = [f"n{i}" for i in range(j) if rng.random() < edge_probability]
        seconds = round(rng.uniform(0.2, 1.0), 3)
        subtasks.append({"id": f"n{j}", "tool": "sleep", "arguments": {"seconds": seconds}, "depends_on": parents})
    return subtasks


def ideal_schedule(subtasks: list[dict[str, Any]]) -> tuple[float, list[str], int]:
    """Earliest finish with unlimited slots: the critical path's length and nodes, and the peak parallelism."""
    finish: dict[str, float] = {}
    start: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for s in subtasks:  # already in topological order: edges only go from earlier to later nodes
        parent = max(s["depends_on"], key=lambda p: finish[p], default=None)
        start[s["id"]] = finish[parent] if parent else 0.0
        finish[s["id"]] = start[s["id"]] + s["arguments"]["seconds"]
        via[s["id"]] = parent
    last: str | None = max(finish, key=lambda k: finish[k])
    length = finish[last]
    path = []
    while last is not None:
        path.append(last)
        last = via[last]
    edges = sorted([(t, 1) for t in start.values()] + [(t, -1) for t in finish.values()], key=lambda e: (e[0], e[1]))
    peak = running = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return length, path[::-1], peak


async def run_plan(
    c: Cluster, reynolds: Proc, subtasks: list[dict[str, Any]], limit_s: float
) -> tuple[dict[str, Any], float]:
    warm_plan = {"subtasks": [{"id": "w", "tool": "sleep", "arguments": {"seconds": 0.01}}]}
    async with c.client(reynolds) as client:
        with deadline(60, "warm-up task"):
            warm = await call(client, "orchestrate", {"plan": warm_plan})
        check_succeeded(warm, "warm-up task")
        started = time.perf_counter()
        with deadline(limit_s, "the DAG task"):
            task = await call(client, "orchestrate", {"plan": {"subtasks": subtasks}})
        wall = time.perf_counter() - started
    check_succeeded(task)
    return task, wall


def overheads(task: dict[str, Any], planned: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where the time beyond the sleeps went, per subtask."""
    created = parse_time(task["created_at"])
    by_id = {s["id"]: s for s in task["subtasks"]}
    waits, extras = [], []
    for s in task["subtasks"]:
        started, finished = parse_time(s["started_at"]), parse_time(s["finished_at"])
        ready = max((parse_time(by_id[p]["finished_at"]) for p in s["depends_on"]), default=created)
        waits.append(started - ready)
        extras.append(finished - started - planned[s["id"]]["arguments"]["seconds"])
    return {
        "ready_to_started_ms": {"p50": ms(percentile(waits, 50)), "p99": ms(percentile(waits, 99))},
        "in_call_beyond_sleep_ms": {"p50": ms(percentile(extras, 50)), "p99": ms(percentile(extras, 99))},
    }


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=positive, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--replicas", type=positive, default=4, help=f"workbench replicas, {AGENT_MAX_CONCURRENCY} slots each"
    )
    parser.add_argument("--edge-probability", type=float, default=0.1, help="chance each earlier node is a parent")
    args = parser.parse_args(argv)
    subtasks = random_dag(args.nodes, args.seed, args.edge_probability)
    critical, path, peak = ideal_schedule(subtasks)
    slots = args.replicas * AGENT_MAX_CONCURRENCY
    with bench_cluster() as c:
        reynolds = c.start_reynolds()
        start_workbench(c, reynolds, args.replicas, AGENT_MAX_CONCURRENCY)
        task, wall = anyio.run(run_plan, c, reynolds, subtasks, 60 + 3 * critical)
    makespan = task["duration_s"]
    ratio = makespan / critical
    hops = len(path)
    emit(
        {
            "benchmark": "makespan",
            "machine": machine(),
            "settings": settings(),
            "parameters": {
                "nodes": args.nodes,
                "seed": args.seed,
                "edge_probability": args.edge_probability,
                "edges": sum(len(s["depends_on"]) for s in subtasks),
                "replicas": args.replicas,
                "slots": slots,
                "ideal_peak_parallelism": peak,
                "total_sleep_s": round(sum(s["arguments"]["seconds"] for s in subtasks), 3),
                "tool": "workbench sleep (0.2-1.0 s, uniform)",
            },
            "results": {
                "subtasks": len(task["subtasks"]),
                "makespan_s": makespan,
                "client_wall_s": round(wall, 3),
                "critical_path_s": round(critical, 3),
                "critical_path_nodes": path,
                "overhead_s": round(makespan - critical, 3),
                "overhead_per_critical_hop_ms": ms((makespan - critical) / hops),
                **overheads(task, {s["id"]: s for s in subtasks}),
            },
            "ratios": {
                "makespan_over_critical_path": round(ratio, 3),
                "target_at_most": TARGET_RATIO,
                "meets_target": ratio <= TARGET_RATIO,
            },
            "notes": {
                "makespan_s": "the task's created_at to finished_at as Reynolds stored them (get_task duration_s)",
                "critical_path_s": "longest chain of planned sleep durations, computed here from the plan",
                "client_wall_s": "orchestrate(wait=true) round trip seen by the client",
                "ready_to_started_ms": "per subtask: last dependency's finished_at (or the task's created_at) "
                "to its own started_at: queueing and dispatch",
                "in_call_beyond_sleep_ms": "per subtask: started_at to finished_at minus the planned sleep",
                "ideal_peak_parallelism": "most subtasks running at once in an unlimited-slot schedule; "
                "slots must be at least this for the critical path to be reachable",
            },
        }
    )


if __name__ == "__main__":
    main()
