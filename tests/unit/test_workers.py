"""The worker supervisor's pieces: a port several processes bind, stopping children, merged metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reynolds import workers
from reynolds.config import Settings


def test_two_workers_can_bind_one_port() -> None:
    first = workers.listen("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = workers.listen("127.0.0.1", port)
    try:
        first.listen()
        second.listen()
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_a_port_held_without_reuse_is_refused() -> None:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        with pytest.raises(OSError):
            workers.listen("127.0.0.1", plain.getsockname()[1])


def test_worker_index_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers.WORKER_ENV, raising=False)
    assert workers.worker_index() is None
    monkeypatch.setenv(workers.WORKER_ENV, "3")
    assert workers.worker_index() == 3


def test_stop_all_signals_then_kills_what_outlasts_the_timeout() -> None:
    polite = subprocess.Popen(["sleep", "30"])
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 30"])
    time.sleep(0.2)  # let the shell install its trap
    workers.stop_all([polite, stubborn, polite], workers.signal.SIGTERM, timeout_s=0.5)
    assert polite.returncode == -workers.signal.SIGTERM
    assert stubborn.returncode == -workers.signal.SIGKILL


COUNT = textwrap.dedent(
    """
    from prometheus_client import CollectorRegistry
    from reynolds.metrics import Metrics, clear
    m = Metrics(CollectorRegistry())
    m.tasks_submitted.inc(2)
    m.leader.set({leader})
    m.inflight.labels("code").set(3)
    m.circuit.labels("code", "gone").set(2)
    clear(m.circuit)  # the replica left
    """
)


def test_metrics_of_every_worker_are_merged(tmp_path: Path) -> None:
    env = {**os.environ, workers.METRICS_ENV: str(tmp_path), workers.WORKER_ENV: "0"}
    for leader in (1, 0):  # two worker processes, each with its own counters
        subprocess.run([sys.executable, "-c", COUNT.format(leader=leader)], env=env, check=True)
    show = "from prometheus_client import CollectorRegistry, generate_latest\n"
    show += "from reynolds.metrics import exposition\nprint(generate_latest(exposition(CollectorRegistry())).decode())"
    text = subprocess.run([sys.executable, "-c", show], env=env, check=True, capture_output=True, text=True).stdout
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(lines["reynolds_tasks_submitted_total"]) == 4
    assert float(lines["reynolds_leader"]) == 1  # the largest: one of them leads
    assert float(lines['reynolds_inflight_subtasks{pool="code"}']) == 6  # calls in flight add up
    assert float(lines['reynolds_circuit_state{agent_id="gone",pool="code"}']) == 0  # not stuck open


def test_replies_are_not_held_back_by_nagle() -> None:
    """asyncio sets TCP_NODELAY only on sockets made with IPPROTO_TCP; without it every reply waited ~40 ms."""
    import asyncio

    async def check() -> int:
        seen: list[int] = []
        accepted = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            accepted.set()
            writer.close()

        server = await asyncio.start_server(handle, sock=workers.listen("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.wait_for(accepted.wait(), 10)
        writer.close()
        server.close()
        return seen[0]

    assert asyncio.run(check()) != 0


def test_a_signal_while_workers_start_stops_those_already_started(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def spawn(index: int, settings: object, metrics_dir: str) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen(["sleep", "30"]))
        if index == 1:
            os.kill(os.getpid(), workers.signal.SIGTERM)  # the operator gives up half-way
        return started[-1]

    monkeypatch.setattr(workers, "_spawn", spawn)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handlers = {sig: workers.signal.getsignal(sig) for sig in (workers.signal.SIGTERM, workers.signal.SIGINT)}
    try:
        status = workers.supervise(Settings(workers=4, port=port))
    finally:
        for sig, handler in handlers.items():
            workers.signal.signal(sig, handler)
    assert len(started) == 2  # no worker is started after the signal
    assert all(p.returncode is not None for p in started)
    assert status == 0  # asked to stop, and everything it started stopped


def test_a_port_already_served_is_refused_before_any_worker_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_spawn", lambda *a: pytest.fail("a worker was started"))
    held = workers.listen("127.0.0.1", 0)
    held.listen()
    try:
        with pytest.raises(OSError):
            workers.supervise(Settings(workers=2, port=held.getsockname()[1]))
    finally:
        held.close()
