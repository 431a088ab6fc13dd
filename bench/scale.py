"""Scale: time and memory to accept and finish plans of 100, 1,000 and 10,000 independent no-op subtasks
(workbench ``echo``, no dependencies). Each size runs on a fresh cluster, so the Reynolds process's
lifetime peak RSS (VmHWM) belongs to that size alone.

    .venv/bin/python -m bench.scale --sizes 100,1000,10000 --replicas 2
"""

from __future__ import annotations

import argparse
import itertools
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
    parse_time,
    positive,
    rss_kib,
    settings,
    start_workbench,
    unlimited_client,
)
from reynolds.client import call
from tests.integration.cluster import Cluster, Proc

POLL_S = 0.2
SAMPLE_S = 0.1
TERMINAL = {"succeeded", "failed", "cancelled"}


def echo_plan(n: int) -> dict[str, Any]:
    return {"subtasks": [{"id": f"e{i}", "tool": "echo", "arguments": {"value": i}} for i in range(n)]}


async def measure(c: Cluster, reynolds: Proc, size: int) -> dict[str, Any]:
    assert reynolds.popen is not None
    pid = reynolds.popen.pid
    async with unlimited_client(c, reynolds) as client:
        with deadline(60, "warm-up task"):
            warm = await call(client, "orchestrate", {"plan": echo_plan(10)})
        check_succeeded(warm, "warm-up task")
        baseline = rss_kib(pid)
        sampled = [baseline["VmRSS"]]
        done = anyio.Event()

        async def sample() -> None:
            while not done.is_set():
                sampled.append(rss_kib(pid)["VmRSS"])
                await anyio.sleep(SAMPLE_S)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            plan = echo_plan(size)
            started = time.perf_counter()
            with deadline(60 + size * 0.01, f"submitting {size} subtasks"):
                accepted = await call(client, "orchestrate", {"plan": plan, "wait": False})
            submit = time.perf_counter() - started
            task_id = accepted["task_id"]
            polls = 0
            limit_s = 120 + size * 0.1
            give_up = time.perf_counter() + limit_s
            while True:  # list_tasks(limit=1): the newest task, with counts but without 10k subtask rows
                polls += 1
                summary = (await call(client, "list_tasks", {"limit": 1}))["tasks"][0]
                if summary["task_id"] != task_id:
                    raise RuntimeError(f"newest task is {summary['task_id']}, expected {task_id}")
                if summary["state"] in TERMINAL:
                    break
                if time.perf_counter() > give_up:
                    raise RuntimeError(f"task of {size} subtasks not finished after {limit_s:g} s: {summary['counts']}")
                await anyio.sleep(POLL_S)
            observed = time.perf_counter() - started
            done.set()
        peak_before_view = rss_kib(pid)
        t0 = time.perf_counter()
        view = await call(client, "get_task", {"task_id": task_id})
        get_task_s = time.perf_counter() - t0
        after_view = rss_kib(pid)
    check_succeeded(view)
    duration = parse_time(summary["finished_at"]) - parse_time(summary["created_at"])
    return {
        "subtasks": size,
        "submit_s": round(submit, 3),
        "task_duration_s": round(duration, 3),
        "finish_observed_s": round(observed, 3),
        "ms_per_subtask": round(duration / size * 1000, 3),
        "throughput_per_s": round(size / duration, 1),
        "get_task_full_view_s": round(get_task_s, 3),
        "polls": polls,
        "rss_mib": {
            "baseline": _mib(baseline["VmRSS"]),
            "sampled_max_during_run": _mib(max(sampled)),
            "peak_vmhwm_through_run": _mib(peak_before_view["VmHWM"]),
            "peak_vmhwm_after_full_get_task": _mib(after_view["VmHWM"]),
            "growth_over_baseline": _mib(peak_before_view["VmHWM"] - baseline["VmRSS"]),
        },
    }


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def growth(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Ratios between consecutive sizes: linear growth shows as time ratios close to the size ratio."""
    ratios = {}
    for small, large in itertools.pairwise(results):
        name = f"{large['subtasks']}_over_{small['subtasks']}"
        ratios[name] = {
            "size": round(large["subtasks"] / small["subtasks"], 2),
            "submit_s": round(large["submit_s"] / small["submit_s"], 2),
            "task_duration_s": round(large["task_duration_s"] / small["task_duration_s"], 2),
            "rss_growth_over_baseline": round(
                max(large["rss_mib"]["growth_over_baseline"], 0.1) / max(small["rss_mib"]["growth_over_baseline"], 0.1),
                2,
            ),
        }
    return ratios


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated plan sizes")
    parser.add_argument("--replicas", type=positive, default=2)
    args = parser.parse_args(argv)
    try:
        sizes = [positive(s) for s in args.sizes.split(",")]
    except (ValueError, argparse.ArgumentTypeError) as err:
        parser.error(f"--sizes: {err}")
    results = []
    for size in sizes:
        with bench_cluster() as c:  # a fresh Reynolds process per size: VmHWM is a lifetime peak
            reynolds = c.start_reynolds()
            start_workbench(c, reynolds, args.replicas, AGENT_MAX_CONCURRENCY)
            results.append(anyio.run(measure, c, reynolds, size))
    emit(
        {
            "benchmark": "scale",
            "machine": machine(),
            "settings": settings(),
            "parameters": {
                "sizes": sizes,
                "replicas": args.replicas,
                "max_concurrency_per_replica": AGENT_MAX_CONCURRENCY,
                "plan": "independent workbench echo subtasks (no dependencies)",
            },
            "results": results,
            "growth": growth(results),
            "notes": {
                "submit_s": "orchestrate(wait=false) round trip; the reply is the full task view with every subtask",
                "task_duration_s": "the task's created_at to finished_at as Reynolds stored them",
                "finish_observed_s": "submit start until list_tasks(limit=1) showed the task finished "
                f"(polled every {POLL_S} s)",
                "get_task_full_view_s": "one get_task after the end: every subtask with its result",
                "rss_mib": "Reynolds process only (not Postgres, Redis or agents); baseline after a 10-subtask "
                f"warm-up; sampled every {SAMPLE_S} s; VmHWM is the process's lifetime peak",
                "growth": "ratio of each measure between consecutive sizes; linear growth matches the size ratio",
            },
        }
    )


if __name__ == "__main__":
    main()
