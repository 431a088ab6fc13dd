"""What every benchmark shares: a real cluster with quiet logs, machine facts, percentiles, process memory,
a direct MCP session to an agent replica, and printing the one JSON document a benchmark produces."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.cluster import Cluster, Proc, cluster

# Logging at INFO costs measurable time per call on two cores; benchmarks measure routing, not logging.
QUIET = {"REYNOLDS_LOG_LEVEL": "WARNING", "AGENT_LOG_LEVEL": "WARNING"}

# The cluster harness shortens timeouts so failure drills finish fast; a benchmark should run the way an
# install does, so these restore reynolds.config's defaults (leases renewed every 15 s, not every 1.5 s ...).
PRODUCTION = {
    "REYNOLDS_VISIBILITY_TIMEOUT_S": "30",
    "REYNOLDS_HEARTBEAT_TTL_S": "15",
    "REYNOLDS_PROBE_INTERVAL_S": "5",
    "REYNOLDS_UNHEALTHY_AFTER": "3",
    "REYNOLDS_CIRCUIT_OPEN_S": "10",
    "REYNOLDS_BACKOFF_BASE_S": "0.5",
    "REYNOLDS_BACKOFF_MAX_S": "30",
    "REYNOLDS_DRAIN_TIMEOUT_S": "20",
    "REYNOLDS_NO_REPLICA_WAIT_S": "60",
}
AGENT_HEARTBEAT_INTERVAL_S = "5"
AGENT_MAX_CONCURRENCY = 16  # the agent runtime's default, stated so results say what they ran with


def settings() -> dict[str, str]:
    """The Reynolds and agent settings every benchmark runs with, for the JSON report."""
    return {**PRODUCTION, **QUIET, "HEARTBEAT_INTERVAL_S": AGENT_HEARTBEAT_INTERVAL_S}


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # other work on the machine skews results; the 1-minute load average at the end says how busy it was
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak over the process's life) of a process, in KiB, from /proc."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by a set of processes between construction and ``used()``: shows where the work went."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.pids = {name: p.popen.pid for name, p in procs.items() if p.popen is not None}
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def used(self) -> dict[str, float]:
        return {name: round(cpu_seconds(pid) - self.start[name], 3) for name, pid in self.pids.items()}


@contextlib.contextmanager
def bench_cluster(**extra: str) -> Iterator[Cluster]:
    """A cluster in a throwaway directory with quiet logs; every process is stopped on the way out. When the
    benchmark fails, the end of each process's log goes to stderr first, since the directory is then removed."""
    with (
        tempfile.TemporaryDirectory(prefix="reynolds-bench-") as tmp,
        cluster(Path(tmp), **PRODUCTION, **QUIET, **extra) as c,
    ):
        try:
            yield c
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name} (last 3000 characters)\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Fail with a clear message instead of waiting forever on a task that never ends."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError as err:
        raise RuntimeError(f"{what} did not finish within {seconds:g} s; see the logs above") from err


def start_workbench(c: Cluster, reynolds: Proc, replicas: int, max_concurrency: int) -> list[Proc]:
    agents = [
        c.start_agent(
            "workbench",
            reynolds=reynolds,
            AGENT_MAX_CONCURRENCY=str(max_concurrency),
            HEARTBEAT_INTERVAL_S=AGENT_HEARTBEAT_INTERVAL_S,
        )
        for _ in range(replicas)
    ]
    c.wait_registered([a.name for a in agents])
    return agents


@contextlib.asynccontextmanager
async def agent_session(agent: Proc, token: str) -> AsyncIterator[Client]:
    """One long-lived MCP session to a replica, opened the way Reynolds opens its own (reynolds/sessions.py)."""
    limits = httpx2.Limits(max_connections=256, max_keepalive_connections=64)
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx2.Timeout(10.0, read=None),
            limits=limits,
        ) as http,
        Client(streamable_http_client(agent.env["AGENT_URL"], http_client=http)) as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def unlimited_client(c: Cluster, reynolds: Proc) -> AsyncIterator[Client]:
    """A Reynolds client without the SDK's 1 MiB cap on one server-sent event: a task view of a few thousand
    subtasks is larger than that, and ``reynolds.client.connect`` (which keeps the cap) fails to read it."""
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {c.client_token}"}, timeout=httpx2.Timeout(30.0, read=None)
        ) as http,
        Client(streamable_http_client(f"{reynolds.base_url}/mcp", http_client=http, max_sse_event_size=None)) as client,
    ):
        yield client


def parse_time(value: str | None) -> float | None:
    """A timestamp from a TaskView (ISO 8601) as epoch seconds."""
    return None if value is None else datetime.fromisoformat(value).timestamp()


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def arguments(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description)


def check_succeeded(task: dict[str, Any], what: str = "task") -> None:
    """Raise with the task's counts and its most common subtask errors unless it succeeded."""
    if task["state"] == "succeeded":
        return
    errors: dict[str, int] = {}
    for s in task.get("subtasks", []):
        if s.get("error"):
            errors[s["error"]] = errors.get(s["error"], 0) + 1
    common = sorted(errors.items(), key=lambda e: -e[1])[:3]
    raise RuntimeError(
        f"{what} ended {task['state']} ({task.get('error')}); counts {task.get('counts')}; "
        f"most common subtask errors: {common}"
    )


def emit(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
