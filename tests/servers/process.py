"""Start and stop ``plain_mcp`` servers as real processes, waiting on their port instead of sleeping."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, name: str, log: Path, *tls: str) -> subprocess.Popen[bytes]:
    """``tls``: ``--cert PATH --key PATH``. Returns once the port accepts connections."""
    argv = [sys.executable, "-m", "tests.servers.plain_mcp", str(port), name, *tls]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"plain server {name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError(f"plain server {name} did not listen on {port}")


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
