"""Routing overhead: N no-op calls (workbench ``echo``) through Reynolds versus the same N calls made
straight to the same replicas at the same concurrency.

Direct calls reuse one MCP session per replica, as Reynolds does, and keep at most ``max_concurrency``
calls in flight per replica, which is exactly what Reynolds may have in flight. Both sides send a unique
idempotency key in ``_meta``, so the replicas do the same work either way.

Each round runs the direct side and then the routed side, back to back on the same cluster; the result is
the round with the median ratio, so one burst of other load on the machine does not decide it.

    .venv/bin/python -m bench.routing --n 1000 --replicas 2 --rounds 3
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import time
import uuid
from typing import Any

import anyio
from mcp import Client

from agents.runtime.idempotency import IDEMPOTENCY_META_KEY
from bench.common import (
    AGENT_MAX_CONCURRENCY,
    CpuMeter,
    agent_session,
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

TARGET_RATIO = 0.5  # routed throughput should be at least half of direct


def echo_plan(n: int) -> dict[str, Any]:
    return {"subtasks": [{"id": f"e{i}", "tool": "echo", "arguments": {"value": i}} for i in range(n)]}


def summary(latencies: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "mean_ms": ms(statistics.fmean(latencies)) if latencies else None,
    }


async def direct(
    agents: list[Proc], processes: dict[str, Proc], token: str, n: int, per_replica: int, serial: int
) -> dict[str, Any]:
    """N echo calls over one session per replica, ``per_replica`` in flight on each; then ``serial`` one by one."""
    run = uuid.uuid4().hex[:8]
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(agent_session(a, token)) for a in agents]
        for s in sessions:  # warm-up: first call on a session pays for imports and connection set-up
            await s.call_tool("echo", {"value": -1})
        latencies: list[float] = []
        numbers = iter(range(n))

        async def one(client: Client, i: int, tag: str) -> float:
            started = time.perf_counter()
            result = await client.call_tool(
                "echo", {"value": i}, meta={IDEMPOTENCY_META_KEY: f"direct-{run}-{tag}/{i}"}
            )
            if result.is_error:
                raise RuntimeError(f"direct echo failed: {result.content}")
            return time.perf_counter() - started

        async def worker(client: Client) -> None:
            for i in numbers:  # a shared iterator: each worker takes the next number
                latencies.append(await one(client, i, "load"))

        meter, own_cpu = CpuMeter(processes), time.process_time()
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for s in sessions:
                for _ in range(per_replica):
                    tg.start_soon(worker, s)
        wall = time.perf_counter() - started
        cpu = {**meter.used(), "benchmark_client": round(time.process_time() - own_cpu, 3)}
        unloaded = [await one(s, i, "serial") for i, s in zip(range(serial), itertools.cycle(sessions))]
    return {
        "calls": n,
        "wall_s": round(wall, 3),
        "throughput_per_s": round(n / wall, 1),
        "latency": summary(latencies),
        "unloaded_latency": summary(unloaded),
        "cpu_s": cpu,
        "cpu_ms_per_call": {name: round(seconds / n * 1000, 3) for name, seconds in cpu.items()},
    }


async def routed(
    c: Cluster, reynolds: Proc, processes: dict[str, Proc], n: int, concurrency: int, serial: int
) -> dict[str, Any]:
    """One orchestrate of N independent echo subtasks (wait=true); then ``serial`` one-subtask tasks one by one."""
    async with c.client(reynolds) as client:
        with deadline(60, "warm-up task"):
            warm = await call(client, "orchestrate", {"plan": echo_plan(concurrency)})
        check_succeeded(warm, "warm-up task")
        meter = CpuMeter(processes)
        started = time.perf_counter()
        with deadline(60 + n * 0.1, f"orchestrate of {n} echo subtasks"):
            task = await call(client, "orchestrate", {"plan": echo_plan(n)})
        wall = time.perf_counter() - started
        cpu = meter.used()
        check_succeeded(task)
        unloaded = []
        for i in range(serial):
            t0 = time.perf_counter()
            with deadline(30, f"serial task {i}"):
                one = await call(client, "orchestrate", {"plan": echo_plan(1)})
            unloaded.append(time.perf_counter() - t0)
            check_succeeded(one, f"serial task {i}")
    in_call = [parse_time(s["finished_at"]) - parse_time(s["started_at"]) for s in task["subtasks"]]
    duration = task["duration_s"]
    return {
        "calls": n,
        "wall_s": round(wall, 3),
        "task_duration_s": duration,
        "throughput_per_s": round(n / wall, 1),
        "throughput_by_task_duration_per_s": round(n / duration, 1),
        "subtask_latency": summary(in_call),
        "amortised_ms_per_call": ms(duration / n),
        "littles_law_mean_latency_ms": ms(duration * concurrency / n),
        "unloaded_orchestrate_round_trip": summary(unloaded),
        "cpu_s": cpu,
        "cpu_ms_per_call": {name: round(seconds / n * 1000, 3) for name, seconds in cpu.items()},
        "agents_used": sorted({s["agent_id"] for s in task["subtasks"]}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--n", type=positive, default=1000, help="echo calls per side")
    parser.add_argument("--replicas", type=positive, default=2, help="workbench replicas")
    parser.add_argument("--serial", type=int, default=30, help="calls made one at a time for unloaded latency")
    parser.add_argument("--rounds", type=positive, default=3, help="direct-then-routed rounds (median is reported)")
    args = parser.parse_args(argv)
    concurrency = args.replicas * AGENT_MAX_CONCURRENCY
    rounds: list[tuple[float, dict[str, Any], dict[str, Any]]] = []  # (ratio, direct, routed)
    with bench_cluster() as c:
        reynolds = c.start_reynolds()
        agents = start_workbench(c, reynolds, args.replicas, AGENT_MAX_CONCURRENCY)
        processes = {"reynolds": reynolds, **{a.name: a for a in agents}}
        for _ in range(args.rounds):
            d = anyio.run(direct, agents, processes, c.agent_token, args.n, AGENT_MAX_CONCURRENCY, args.serial)
            r = anyio.run(routed, c, reynolds, processes, args.n, concurrency, args.serial)
            rounds.append((r["throughput_per_s"] / d["throughput_per_s"], d, r))
    ratio, d, r = sorted(rounds, key=lambda x: x[0])[len(rounds) // 2]
    emit(
        {
            "benchmark": "routing",
            "machine": machine(),
            "settings": settings(),
            "parameters": {
                "n": args.n,
                "replicas": args.replicas,
                "max_concurrency_per_replica": AGENT_MAX_CONCURRENCY,
                "concurrency": concurrency,
                "serial": args.serial,
                "rounds": args.rounds,
                "tool": "workbench echo",
            },
            "direct": d,
            "routed": r,
            "ratios": {
                "throughput_routed_over_direct": round(ratio, 3),
                "target_at_least": TARGET_RATIO,
                "meets_target": ratio >= TARGET_RATIO,
                "each_round": [
                    {
                        "ratio": round(x, 3),
                        "direct_per_s": one["throughput_per_s"],
                        "routed_per_s": two["throughput_per_s"],
                    }
                    for x, one, two in rounds
                ],
            },
            "added_latency_ms": {
                "subtask_p50": _diff(r["subtask_latency"]["p50_ms"], d["latency"]["p50_ms"]),
                "subtask_p99": _diff(r["subtask_latency"]["p99_ms"], d["latency"]["p99_ms"]),
                "mean_under_load_littles_law": _diff(r["littles_law_mean_latency_ms"], d["latency"]["mean_ms"]),
                "unloaded_p50": _diff(r["unloaded_orchestrate_round_trip"]["p50_ms"], d["unloaded_latency"]["p50_ms"]),
                "unloaded_p99": _diff(r["unloaded_orchestrate_round_trip"]["p99_ms"], d["unloaded_latency"]["p99_ms"]),
            },
            "notes": {
                "rounds": "each round runs direct then routed back to back on one cluster; `direct`, `routed`, "
                "`ratios` and `added_latency_ms` are from the round with the median ratio, each_round lists all",
                "direct.latency": "client-measured round trip of each call while `concurrency` calls are in flight",
                "direct.unloaded_latency": "round trip of calls made one at a time",
                "routed.wall_s": "client wall time of orchestrate(wait=true): submit, run, and the returned view",
                "routed.task_duration_s": "the task's created_at to finished_at as Reynolds stored them",
                "routed.subtask_latency": "per subtask started_at (claimed in Postgres) to finished_at (result "
                "stored): the agent call plus Reynolds' work around it; queueing before the claim is not included",
                "routed.amortised_ms_per_call": "task_duration_s / n: wall time per call, not a latency",
                "routed.littles_law_mean_latency_ms": "task_duration_s * concurrency / n: the mean time a subtask "
                "holds one of the concurrency slots, if all slots stay busy; compare with direct mean_ms",
                "routed.unloaded_orchestrate_round_trip": "client round trip of orchestrate(wait=true) with one "
                "echo subtask, one at a time: everything Reynolds adds to a lone call",
                "added_latency_ms": "routed minus direct for the matching measure",
                "cpu_s": "CPU seconds each process used during the loaded run (Postgres and Redis not included)",
            },
        }
    )


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


if __name__ == "__main__":
    main()
