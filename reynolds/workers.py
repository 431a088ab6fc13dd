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

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable

import structlog

from reynolds.config import Settings

log = structlog.get_logger("reynolds.workers")

WORKER_ENV = "REYNOLDS_WORKER_INDEX"  # set in a worker's environment: it serves instead of supervising
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
SUPERVISOR_ENV = "REYNOLDS_SUPERVISOR_PID"
STOP_TIMEOUT_S = 40  # a worker's graceful shutdown takes up to 30 s (cli.serve)
PR_SET_PDEATHSIG = 1


def worker_index() -> int | None:
    """This process's number among the workers, or None when it is not a worker."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None else None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that other workers can bind too."""
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so, and with
    # Nagle on, every reply waited out the client's 40 ms delayed ACK
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until a signal or until one exits; the exit status to use."""
    with socket.socket(_family(settings.host)) as probe:  # a port already served is an error, not a silent share
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine, a listener is not
        probe.bind((settings.host, settings.port))
    asked = threading.Event()  # set by a signal; the handler only sets it, so no step is cut short

    def stop(signum: int, frame: object) -> None:
        asked.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="reynolds-metrics-") as metrics_dir:
        try:
            for i in range(settings.workers):
                if not asked.is_set():
                    procs.append(_spawn(i, settings, metrics_dir))
            log.info("workers started", workers=len(procs), pids=[p.pid for p in procs], port=settings.port)
            while not asked.wait(0.2) and all(p.poll() is None for p in procs):
                pass
            for gone in (p for p in procs if p.returncode is not None and not asked.is_set()):
                log.error("a worker exited; stopping the others", pid=gone.pid, status=gone.returncode)
        finally:
            stop_all(procs, signal.SIGTERM)
    clean = all(p.returncode in (0, -signal.SIGTERM, -signal.SIGINT) for p in procs)
    return 0 if asked.is_set() and clean else 1


def die_with_supervisor() -> None:
    """In a worker: end (SIGTERM, so it drains) when the supervisor dies, even by SIGKILL, so no worker is left
    serving the port on its own. Linux's PR_SET_PDEATHSIG; then a check for a supervisor already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(os.environ.get(SUPERVISOR_ENV, "0")):
        os.kill(os.getpid(), signal.SIGTERM)


def _spawn(index: int, settings: Settings, metrics_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        WORKER_ENV: str(index),
        METRICS_ENV: metrics_dir,
        "REYNOLDS_HOST": settings.host,  # the command line's --host/--port/--workers reach the workers too
        "REYNOLDS_PORT": str(settings.port),
        "REYNOLDS_WORKERS": str(settings.workers),
        SUPERVISOR_ENV: str(os.getpid()),
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
    deadline = time.monotonic() + timeout_s  # one deadline for all of them, not one each
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
