"""``reynolds serve --workers 2``: two processes behind one port share the queue and the metrics, serve both
protocol eras, and go down together — never half up."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import metrics_text, sdk_client, wait_task, wait_until

pytestmark = pytest.mark.anyio
TASKS = 12


def listeners(port: int) -> int:
    """Sockets listening on ``port`` (state 0A in /proc/net/tcp): one per worker under SO_REUSEPORT."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def workers_logged(proc: Proc, event: str) -> Counter[int]:
    """How many ``event`` lines each worker wrote to the shared log."""
    seen: Counter[int] = Counter()
    for line in proc.log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event and "worker" in record:
                seen[record["worker"]] += 1
    return seen


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def workers(c: Cluster) -> tuple[Proc, Proc]:
    # prefetch 1: a worker holds at most its free call slots plus one message, so both take part
    reynolds = c.start_reynolds(REYNOLDS_WORKERS="2", REYNOLDS_LOG_LEVEL="DEBUG", REYNOLDS_PREFETCH="1")
    agent = c.start_agent("workbench", reynolds=reynolds, AGENT_MAX_CONCURRENCY="4")
    c.wait_registered([agent.name])
    return reynolds, agent


async def test_two_workers_share_the_port_the_queue_and_the_metrics(reynolds_cluster: Cluster) -> None:
    reynolds, agent = workers(reynolds_cluster)
    assert listeners(reynolds.port) == 2
    task_ids = []
    for i in range(TASKS):  # a fresh connection each: the kernel spreads them over the workers
        async with reynolds_cluster.client(reynolds) as c:
            plan = {"subtasks": [{"id": "r", "tool": "record", "arguments": {"key": f"k{i}", "seconds": 0.3}}]}
            task_ids.append((await call(c, "orchestrate", {"plan": plan, "wait": False}))["task_id"])
    async with reynolds_cluster.client(reynolds) as c:
        for task_id in task_ids:
            assert (await wait_task(c, task_id, timeout_s=60))["state"] == "succeeded"
    assert sorted(r["key"] for r in reynolds_cluster.records(agent)) == sorted(f"k{i}" for i in range(TASKS))
    assert set(workers_logged(reynolds, "calling")) == {0, 1}  # both dispatched part of the work

    async def counted() -> str | None:  # the finished counter is bumped just after the task's last write
        text = await metrics_text(reynolds)
        return text if metric(text, 'reynolds_tasks_total{state="succeeded"}') == TASKS else None

    text = await wait_until(counted, 10, "the merged metrics to count every task")
    for _ in range(6):  # whichever worker answers, /metrics is the sum over both
        text = await metrics_text(reynolds)
        assert metric(text, "reynolds_tasks_submitted_total") == TASKS
        assert metric(text, "reynolds_leader") == 1


async def test_the_handshake_era_works_without_sessions(reynolds_cluster: Cluster) -> None:
    reynolds, _agent = workers(reynolds_cluster)
    async with sdk_client(reynolds, reynolds_cluster.client_token, mode="legacy") as session:
        for i in range(10):  # with per-process sessions some of these would land on the other worker and fail
            plan = {"subtasks": [{"id": "e", "tool": "echo", "arguments": {"value": i}}]}
            view = await call(session, "orchestrate", {"plan": plan, "wait": True})
            assert view["state"] == "succeeded", view


def test_one_worker_dying_stops_the_service(reynolds_cluster: Cluster) -> None:
    reynolds, _agent = workers(reynolds_cluster)
    assert reynolds.popen is not None
    pids = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(reynolds.popen.pid)]).split()]
    assert len(pids) == 2
    subprocess.run(["kill", "-KILL", str(pids[0])], check=True)
    assert reynolds.popen.wait(timeout=60) == 1  # not up with half its workers
    assert listeners(reynolds.port) == 0


def test_sigterm_drains_every_worker_and_exits_0(reynolds_cluster: Cluster) -> None:
    reynolds, _agent = workers(reynolds_cluster)
    assert reynolds.popen is not None
    reynolds.popen.send_signal(signal.SIGTERM)
    assert reynolds.popen.wait(timeout=60) == 0
    assert listeners(reynolds.port) == 0
    assert set(workers_logged(reynolds, "reynolds ready")) == {0, 1}


def test_workers_do_not_outlive_a_killed_supervisor(reynolds_cluster: Cluster) -> None:
    reynolds, _agent = workers(reynolds_cluster)
    assert reynolds.popen is not None
    pids = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(reynolds.popen.pid)]).split()]
    reynolds.kill()  # SIGKILL: the supervisor gets no chance to stop them
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{pid}").exists() and "Z" not in state(pid) for pid in pids):
        assert time.monotonic() < deadline, "workers still running after their supervisor was killed"
        time.sleep(0.1)
    assert listeners(reynolds.port) == 0


def state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
