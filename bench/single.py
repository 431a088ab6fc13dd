"""Per-task overhead: one-subtask tasks through ``orchestrate(wait=true)`` against the same ``echo`` calls made
straight to the same replica, at a few client concurrencies, in one run.

Each client worker holds one MCP session (to the replica, or to Reynolds) and makes its calls one after
another, so concurrency ``c`` means ``c`` calls in flight. For each level the direct side runs first, then
the routed side, back to back; of ``--rounds`` rounds the one with the median throughput ratio is reported
(the direct side moves most with other load on a small machine). CPU per call is read from /proc for
Reynolds, the agent replica, every Postgres process and the Redis server (other processes are not
counted). Reply sizes are the bytes of the text and of the structured content of one ``orchestrate`` reply.
``--workers 1,2`` measures a fresh cluster per worker count (``reynolds serve --workers N``, all of its
processes counted as Reynolds).

    .venv/bin/python -m bench.single --calls 400 --concurrency 1,16 --rounds 3 --workers 1,2
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from agents.runtime.idempotency import IDEMPOTENCY_META_KEY
from bench.common import (
    AGENT_MAX_CONCURRENCY,
    agent_session,
    arguments,
    bench_cluster,
    cpu_seconds,
    emit,
    machine,
    ms,
    percentile,
    positive,
    settings,
    start_workbench,
    unlimited_client,
)
from tests.integration.cluster import Cluster, Proc

TARGET_ADDED_P50_MS = 5.0  # c=1: p50 through Reynolds at most direct + 5 ms
TARGET_RATIO = 0.5  # highest concurrency: routed throughput at least half of direct


def server_pids(reynolds: Proc, agent: Proc) -> dict[str, list[int]]:
    """The processes whose CPU a call costs: Reynolds, the replica, Postgres (every backend) and Redis."""

    def named(prefix: str) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip().startswith(prefix):
                        found.append(int(entry.name))
        return found

    def with_children(pid: int) -> list[int]:  # the supervisor and its workers under --workers N
        kids = [int(e.name) for e in Path("/proc").glob("[0-9]*") if _ppid(e) == pid]
        return [pid, *kids]

    assert reynolds.popen is not None and agent.popen is not None
    return {
        "reynolds": with_children(reynolds.popen.pid),
        "agent": [agent.popen.pid],
        "postgres": named("postgres"),
        "redis": named("redis-server"),
    }


def _ppid(entry: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return None


def cpu_of(pids: dict[str, list[int]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for name, group in pids.items():
        total[name] = 0.0
        for pid in group:
            with contextlib.suppress(OSError):  # a Postgres backend that ended
                total[name] += cpu_seconds(pid)
    return total


async def drive(
    calls: int, concurrency: int, open_session: Callable[[], Any], one: Callable[[Client, int], Awaitable[None]]
) -> dict[str, Any]:
    """``calls`` calls from ``concurrency`` workers, each on its own session; latencies and throughput."""
    latencies: list[float] = []
    numbers = iter(range(calls))
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(open_session()) for _ in range(concurrency)]
        for s in sessions:  # warm-up: the first call on a session pays for the connection
            await one(s, -1)

        async def worker(client: Client) -> None:
            for i in numbers:
                started = time.perf_counter()
                await one(client, i)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for s in sessions:
                tg.start_soon(worker, s)
        wall = time.perf_counter() - started
    return {
        "calls_per_s": round(calls / wall, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
    }


async def measure(c: Cluster, reynolds: Proc, agent: Proc, calls: int, concurrency: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    pids = server_pids(reynolds, agent)

    async def direct_call(client: Client, i: int) -> None:
        result = await client.call_tool(
            "echo", {"value": i}, meta={IDEMPOTENCY_META_KEY: f"d-{run}-{i}-{uuid.uuid4()}"}
        )
        if result.is_error:
            raise RuntimeError(f"direct echo failed: {result.content}")

    async def routed_call(client: Client, i: int) -> None:
        plan = {"subtasks": [{"id": "e", "tool": "echo", "arguments": {"value": i}}]}
        result = await client.call_tool("orchestrate", {"plan": plan, "wait": True})
        if result.is_error or (result.structured_content or {}).get("state") != "succeeded":
            raise RuntimeError(f"routed task failed: {result.content}")

    sides: dict[str, Any] = {}
    for side, session, one in (
        ("direct", lambda: agent_session(agent, c.agent_token), direct_call),
        ("routed", lambda: unlimited_client(c, reynolds), routed_call),
    ):
        before = cpu_of(pids)
        sides[side] = await drive(calls, concurrency, session, one)
        after = cpu_of(pids)
        sides[side]["cpu_ms_per_call"] = {k: round((after[k] - before[k]) * 1000 / calls, 3) for k in pids}
    d, r = sides["direct"], sides["routed"]
    return {
        "concurrency": concurrency,
        **sides,
        "added_p50_ms": round(r["p50_ms"] - d["p50_ms"], 3),
        "throughput_ratio": round(r["calls_per_s"] / d["calls_per_s"], 3),
    }


async def reply_sizes(c: Cluster, reynolds: Proc) -> dict[str, int]:
    async with unlimited_client(c, reynolds) as client:
        plan = {"subtasks": [{"id": "e", "tool": "echo", "arguments": {"value": 1}}]}
        result = await client.call_tool("orchestrate", {"plan": plan, "wait": True})
    text = "".join(getattr(block, "text", "") for block in result.content)
    return {
        "text_bytes": len(text.encode()),
        "structured_bytes": len(json.dumps(result.structured_content, separators=(",", ":")).encode()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=positive, default=400, help="calls per side and concurrency level")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated client concurrencies")
    parser.add_argument("--rounds", type=positive, default=3, help="rounds per level; the median one is reported")
    parser.add_argument("--workers", default="1", help="comma-separated Reynolds worker counts, a cluster each")
    args = parser.parse_args(argv)
    levels = [positive(v) for v in args.concurrency.split(",")]
    worker_counts = [positive(v) for v in args.workers.split(",")]
    results = []
    for workers in worker_counts:
        with bench_cluster() as c:
            reynolds = c.start_reynolds(REYNOLDS_WORKERS=str(workers))
            (agent,) = start_workbench(c, reynolds, 1, AGENT_MAX_CONCURRENCY)
            for level in levels:  # the round with the median ratio, so one burst of other load does not decide it
                rounds = [anyio.run(measure, c, reynolds, agent, args.calls, level) for _ in range(args.rounds)]
                rounds.sort(key=lambda r: r["throughput_ratio"])
                median = rounds[len(rounds) // 2]
                results.append(
                    {"workers": workers, **median, "ratios_of_rounds": [r["throughput_ratio"] for r in rounds]}
                )
            sizes = anyio.run(reply_sizes, c, reynolds)
    lowest, highest = results[0], results[-1]  # c=lowest with the fewest workers, c=highest with the most
    emit(
        {
            "benchmark": "single",
            "machine": machine(),
            "settings": settings(),
            "parameters": {
                "calls": args.calls,
                "concurrency": levels,
                "rounds": args.rounds,
                "replicas": 1,
                "workers": worker_counts,
            },
            "results": results,
            "reply": sizes,
            "targets": {
                "added_p50_ms_at_lowest": {
                    "value": lowest["added_p50_ms"],
                    "target": TARGET_ADDED_P50_MS,
                    "met": lowest["added_p50_ms"] <= TARGET_ADDED_P50_MS,
                },
                "throughput_ratio_at_highest": {
                    "value": highest["throughput_ratio"],
                    "target": TARGET_RATIO,
                    "met": highest["throughput_ratio"] >= TARGET_RATIO,
                },
            },
            "notes": {
                "latency": "client round trip of one call (direct) or one orchestrate(wait=true) of a one-subtask plan",
                "cpu_ms_per_call": "CPU of each server-side process over the side's calls, divided by the calls",
                "postgres": "every process named postgres on the machine (backends, WAL writer, checkpointer)",
                "workers": "Reynolds processes behind the one port (reynolds serve --workers N); targets are read "
                "at the lowest concurrency with the first count and the highest concurrency with the last",
            },
        }
    )


if __name__ == "__main__":
    main()
