"""``reynolds serve --workers N``: N Reynolds processes on one port and one queue, one per core.

A Reynolds process runs its dispatcher, its MCP endpoints and its JSON work on one core. Several processes
already share a queue safely (leases, the fleet lease, the wake-up pattern subscription), so the
supervisor here only starts N of them and watches them:

- each worker binds the same address with ``SO_REUSEPORT``, and the kernel spreads new connections over
  them;
- the workers write their metrics to one directory (``prometheus_client``'s multiprocess mode), so
  ``/metrics`` from any worker is the sum over all of them (``metrics.exposition``);
- the handshake era's MCP sessions live in one process's memory, so with several workers that era is served
  without sessions (``stateless_http``): no server-to-client requests on it (``server.build_app``);
- when one worker exits, the supervisor stops the others and exits non-zero: half a service refusing
  work is worse than a restart. SIGTERM or SIGINT stops every worker gracefully (each drains).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable

import structlog

from reynolds.config import Settings

log = structlog.get_logger("reynolds.workers")

WORKER_ENV = "REYNOLDS_WORKER_INDEX"  # set in a worker's environment: it serves instead of supervising
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
STOP_TIMEOUT_S = 40  # a worker's graceful shutdown takes up to 30 s (cli.serve)


class _Stop(Exception):
    """A signal asked the supervisor to stop."""


def worker_index() -> int | None:
    """This process's number among the workers, or None when it is not a worker."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None else None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that other workers can bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so, and with
    # Nagle on, every reply waited out the client's 40 ms delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until a signal or until one exits; the exit status to use."""

    def stop(signum: int, frame: object) -> None:
        raise _Stop

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    asked = False
    with tempfile.TemporaryDirectory(prefix="reynolds-metrics-") as metrics_dir:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs = [_spawn(i, settings, metrics_dir) for i in range(settings.workers)]
            log.info("workers started", workers=settings.workers, pids=[p.pid for p in procs], port=settings.port)
            while all(p.poll() is None for p in procs):
                time.sleep(0.2)
            gone = next(p for p in procs if p.returncode is not None)
            log.error("a worker exited; stopping the others", pid=gone.pid, status=gone.returncode)
        except _Stop:
            asked = True
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # a second signal must not cut this short
                signal.signal(sig, signal.SIG_IGN)
            stop_all(procs, signal.SIGTERM)
    clean = all(p.returncode in (0, -signal.SIGTERM, -signal.SIGINT) for p in procs)
    return 0 if asked and clean else 1


def _spawn(index: int, settings: Settings, metrics_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        WORKER_ENV: str(index),
        METRICS_ENV: metrics_dir,
        "REYNOLDS_HOST": settings.host,  # the command line's --host/--port/--workers reach the workers too
        "REYNOLDS_PORT": str(settings.port),
        "REYNOLDS_WORKERS": str(settings.workers),
    }
    return subprocess.Popen([sys.executable, "-m", "reynolds", "serve"], env=env)


def stop_all(
    procs: Iterable[subprocess.Popen[bytes]], sig: signal.Signals = signal.SIGINT, timeout_s: float = STOP_TIMEOUT_S
) -> None:
    """Signal every child still running, then wait for each; one that outlasts the timeout is killed."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
