"""`reynolds up`, the README's first command, as a process: it brings Reynolds and its agents up against
the configured Postgres and Redis, serves a task, and a SIGTERM (a `kill`, a closed terminal's SIGHUP)
stops every process it started, the same as Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reynolds.client import call, connect
from tests.integration.cluster import REPO, Cluster, Proc


def free_run(n: int) -> int:
    """The first of ``n`` consecutive free loopback ports (the agents' ports follow --agent-port)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid``: everything `reynolds up` started, embedded servers included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def start_session(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``argv`` in a session of its own, so whatever it starts can be found (and killed) by session id."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.anyio
async def test_up_serves_a_task_and_a_sigterm_stops_everything_it_started(reynolds_cluster: Cluster) -> None:
    work = reynolds_cluster.workdir
    port, agent_port = free_run(1), free_run(4)
    env = {
        **os.environ,
        "REYNOLDS_DATABASE_URL": reynolds_cluster.database_url,
        "REYNOLDS_DATABASE_SCHEMA": reynolds_cluster.schema,
        "REYNOLDS_REDIS_URL": reynolds_cluster.redis_url,
        "REYNOLDS_KEY_PREFIX": reynolds_cluster.prefix,
        "REYNOLDS_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "reynolds", "up", "--with-workbench", "--port", str(port)]
    argv += ["--agent-port", str(agent_port), "--state-dir", str(work / "state"), "--workspaces", str(work / "ws")]
    log = work / "up.log"
    up = start_session(argv, env, log)
    try:
        Proc("up", argv, env, port, log, up).wait_http("/ready", timeout_s=60)
        reynolds_cluster.wait_registered(["devops-local", "platform-local", "code-local", "workbench-local"])
        token = (work / "state" / "client_token").read_text().strip()
        assert (work / "state" / "client_token").stat().st_mode & 0o077 == 0
        async with connect(f"http://127.0.0.1:{port}/mcp", token) as client:
            plan = {"subtasks": [{"id": "hi", "tool": "echo", "arguments": {"value": "hello"}}]}
            task = await call(client, "orchestrate", {"plan": plan})
        assert task["state"] == "succeeded", task
        started = session_members(up.pid)
        assert len(started) >= 5, started  # up itself, Reynolds and four agents

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert session_members(up.pid) == [], log.read_text()[-3000:]
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
