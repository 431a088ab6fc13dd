"""Sandboxed command runner: argument lists, no shell, a timeout, an output cap, cwd confined to a root,
and an environment scrubbed of secrets."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from agents.runtime.errors import CommandFailed
from agents.runtime.layers import resolve_inside
from agents.runtime.workspace import current_root

# Variables a command may inherit; everything else (tokens, keys, passwords) is dropped.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
# whole name parts only: GITHUB_TOKEN and API_KEY are secrets, GIT_AUTHOR_NAME is not
SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|KEY|CREDENTIALS?|AUTH|AUTHORIZATION)(_|$)", re.IGNORECASE
)


class CommandResult(BaseModel):
    """What a command did: its exit code and (possibly truncated) output."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    truncated: bool
    duration_s: float


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment plus ``extra``, minus anything whose name looks like a secret."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for name, value in (extra or {}).items():
        if SECRET_NAME.search(name):
            raise CommandFailed(f"refusing to pass secret-looking variable {name!r} to a command")
        env[name] = value
    return env


@dataclass
class Sandbox:
    """Runs commands with their working directory inside ``root`` (the agent's workspace)."""

    root: Path
    timeout_s: float = 120.0
    output_limit: int = 1_000_000

    def root_for_call(self) -> Path:
        """The current call's task workspace (agents/runtime/workspace.py), else ``root``."""
        return current_root(self.root)

    async def run(
        self,
        argv: Sequence[str],
        cwd: str | Path = ".",
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` (no shell) in ``cwd`` relative to the sandbox root; never raises on a non-zero exit."""
        if not argv or not all(isinstance(a, str) and a for a in argv):
            raise CommandFailed("a command is a non-empty list of non-empty strings")
        workdir = resolve_inside(self.root_for_call(), cwd)
        if not workdir.is_dir():
            raise CommandFailed(f"working directory {cwd!r} does not exist in the workspace")
        limit = timeout_s or self.timeout_s
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=workdir,
                env=scrubbed_env(env),
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # own process group, so a timeout kills children too
            )
        except FileNotFoundError as err:
            raise CommandFailed(f"command not found: {argv[0]}") from err
        truncated = False

        async def capped(stream: asyncio.StreamReader) -> bytes:
            nonlocal truncated
            data = bytearray()
            while chunk := await stream.read(65536):
                room = self.output_limit - len(data)
                if room > 0:
                    data += chunk[:room]
                if len(chunk) > room:
                    truncated = True
            return bytes(data)

        async def communicate() -> tuple[bytes, bytes]:
            if stdin is not None and proc.stdin:
                proc.stdin.write(stdin)
                await proc.stdin.drain()
                proc.stdin.close()
            assert proc.stdout and proc.stderr
            out, err = await asyncio.gather(capped(proc.stdout), capped(proc.stderr))
            await proc.wait()
            return out, err

        try:
            out, err = await asyncio.wait_for(communicate(), limit)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill_group(proc)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise CommandFailed(f"{argv[0]} did not finish within {limit:g} s and was killed") from exc
        return CommandResult(
            argv=list(argv),
            exit_code=proc.returncode if proc.returncode is not None else -1,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            truncated=truncated,
            duration_s=round(time.monotonic() - started, 3),
        )


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
