"""Sandboxed command runner. Whatever it runs is treated as repository content: argument lists, no shell,
a timeout, an output cap, cwd confined to the workspace, an allow-listed environment, and a separate
identity.

Each call leases one uid from a small range (``SANDBOX_UID_BASE`` .. ``+SANDBOX_UIDS``, all in group
``SANDBOX_GID``; a lock file per uid makes the lease hold across processes) and starts::

    [unshare --net] prlimit <rlimits> setpriv --reuid=UID --regid=GID --clear-groups --no-new-privs argv

so the command cannot read the agent's files, environment or ``/proc`` entries, cannot gain privileges,
and has no network when the host allows a network namespace (see README "Security"). When the call
ends — normal exit, timeout or cancel — a killer running as that uid sends SIGKILL to every process of
the uid (``kill(-1)``: this reaches children that called setsid or double-forked) and empties its HOME,
and the lease is returned only once no process of the uid is left.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import structlog
from pydantic import BaseModel

from agents.runtime.errors import CommandFailed, NotConfigured
from agents.runtime.layers import resolve_inside
from agents.runtime.settings import SandboxSettings
from agents.runtime.workspace import current_root, share_tree

log = structlog.get_logger(__name__)

# Variables a command may inherit; everything else (tokens, keys, passwords) is dropped.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
# whole name parts only: GITHUB_TOKEN and API_KEY are secrets, GIT_AUTHOR_NAME is not
SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|KEY|CREDENTIALS?|AUTH|AUTHORIZATION)(_|$)", re.IGNORECASE
)
UNSANDBOXED_HINT = "SANDBOX_ALLOW_UNSANDBOXED=true runs commands as the agent itself (local development only)"
# Runs as the call's uid once the call ends (dash, findutils: no interpreter start-up): kill(-1) signals
# every process of this uid but the shell itself, in one pass the kernel does not let a fork race; then
# HOME and the uid's leftovers in the shared temp dirs go.
KILLER = """
kill -KILL -1 2>/dev/null
find "$1" -mindepth 1 -delete 2>/dev/null
find /tmp /var/tmp /dev/shm -mindepth 1 -maxdepth 1 -user "$(id -u)" -exec rm -rf -- {} + 2>/dev/null
exit 0
"""
REAP_ATTEMPTS = 200  # x 10 ms: a process that survives SIGKILL this long is stuck in the kernel


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


def exposed_secret_files(environ: Mapping[str, str]) -> list[str]:
    """Secret files (``*_FILE`` variables with a secret-looking name) that any other user could read: a
    sandbox uid could read them too."""
    exposed = []
    for name, value in environ.items():
        if name.endswith("_FILE") and SECRET_NAME.search(name.removesuffix("_FILE")) and os.path.isfile(value):
            path = Path(value).resolve()
            searchable = all(os.stat(p).st_mode & 0o001 for p in path.parents)
            if searchable and path.stat().st_mode & 0o004:
                exposed.append(f"{name}={value}")
    return exposed


@functools.cache
def can_switch_uid(setpriv: str, uid: int, gid: int) -> str | None:
    """None when ``setpriv`` can run a command as ``uid``:``gid``; else why not."""
    try:
        done = subprocess.run(
            [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as err:
        return str(err)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit code {done.returncode}")


@functools.cache
def can_unshare_net() -> bool:
    """Whether this process may give a command its own, empty network namespace (root with
    CAP_SYS_ADMIN; not inside a container under Docker's default seccomp profile)."""
    try:
        able = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        able = False
    if not able:
        log.warning("no network namespace for sandboxed commands: they share the agent's network")
    return able


def unsearchable_parent(path: Path, gid: int) -> Path | None:
    """The first directory above ``path`` that a sandbox uid (in group ``gid``, owner of none of them)
    cannot pass through; None when every one can be searched by others or by that group."""
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_mode & stat.S_IXOTH or (st.st_gid == gid and st.st_mode & stat.S_IXGRP):
            continue
        return parent
    return None


def live_pids(uid: int) -> list[int]:
    """Processes of ``uid`` that still run (zombies wait only for their reaper). /proc/<pid> belongs to
    the process's uid; one that made itself non-dumpable shows as root, but kill(-1) reached it already."""
    pids = []
    for entry in os.scandir("/proc"):
        try:
            if not entry.name.isdigit() or entry.stat().st_uid != uid:
                continue
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


@dataclass
class Lease:
    """One sandbox uid held by this call (``fd`` is its flock); ``uid`` None when unsandboxed."""

    uid: int | None
    home: Path | None
    fd: int | None = None


@dataclass
class Sandbox:
    """Runs commands with their working directory inside the current workspace, as a sandbox uid."""

    root: Path
    timeout_s: float = 120.0
    output_limit: int = 1_000_000
    settings: SandboxSettings = field(default_factory=SandboxSettings)
    _scratch_shared: bool = field(default=False, init=False, repr=False)
    _reachable: set[Path] = field(default_factory=set, init=False, repr=False)

    def root_for_call(self) -> Path:
        """The workspace the current call works in; commands' ``cwd`` is resolved against it."""
        return current_root(self.root)

    @property
    def git_allow_file(self) -> bool:
        return self.settings.git_allow_file

    async def run(
        self,
        argv: Sequence[str],
        cwd: str | Path = ".",
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        network: bool = False,
    ) -> CommandResult:
        """Run ``argv`` (no shell) in ``cwd`` relative to the workspace; never raises on a non-zero exit.
        ``network=True`` keeps the host's network for this command."""
        if not argv or not all(isinstance(a, str) and a for a in argv):
            raise CommandFailed("a command is a non-empty list of non-empty strings")
        workdir = resolve_inside(self.root_for_call(), cwd)
        if not workdir.is_dir():
            raise CommandFailed(f"working directory {cwd!r} does not exist in the workspace")
        command_env = scrubbed_env(env)
        if shutil.which(argv[0], path=command_env["PATH"]) is None:
            raise CommandFailed(f"command not found: {argv[0]}")
        limit = timeout_s or self.timeout_s
        lease = await self._lease(limit)
        try:
            if lease.home:
                await self._share_scratch(lease.uid)
                self._check_reachable(self.root_for_call())
                command_env |= {"HOME": str(lease.home), "TMPDIR": str(lease.home)}
            else:
                command_env |= {k: os.environ[k] for k in ("HOME", "TMPDIR") if k in os.environ}
            wrapped = [*self._wrapper(lease, network), "--", *argv]
            return await self._exec(list(argv), wrapped, workdir, command_env, stdin, limit, lease)
        finally:
            with anyio.CancelScope(shield=True):
                await self._release(lease)

    def _wrapper(self, lease: Lease, network: bool) -> list[str]:
        s = self.settings
        mib = 1024 * 1024
        limits = [
            f"--cpu={s.cpu_s}",
            f"--as={s.memory_mb * mib}",
            f"--nofile={s.open_files}",
            f"--nproc={s.processes}",
            f"--fsize={s.file_size_mb * mib}",
            "--core=0",
        ]
        prefix = [] if network or not can_unshare_net() else ["unshare", "--net", "--"]
        if lease.uid is None:
            return [*prefix, "prlimit", *limits]
        return [*prefix, "prlimit", *limits, "--", *self._as_uid(lease.uid)]

    def _as_uid(self, uid: int) -> list[str]:
        s = self.settings
        return [s.setpriv, f"--reuid={uid}", f"--regid={s.gid}", "--clear-groups", "--no-new-privs"]

    async def _exec(
        self,
        argv: list[str],
        wrapped: list[str],
        workdir: Path,
        env: dict[str, str],
        stdin: bytes | None,
        limit: float,
        lease: Lease,
    ) -> CommandResult:
        started = time.monotonic()
        # Our own pipes, not asyncio's: its Process.wait() also waits for the pipes to close, which a
        # child left behind (holding stdout) would delay until it is killed.
        (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write(stdin or b"")
            stdin_file.seek(0)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *wrapped,
                    cwd=workdir,
                    env=env,
                    stdin=stdin_file if stdin is not None else asyncio.subprocess.DEVNULL,
                    stdout=out_w,
                    stderr=err_w,
                    start_new_session=True,  # own session and process group, apart from the agent's
                    umask=0o007,  # what it creates stays usable by the other sandbox uids (the workspace group)
                )
            finally:
                os.close(out_w)
                os.close(err_w)
        truncated = False

        async def capped(fd: int) -> bytes:
            nonlocal truncated
            data = bytearray()
            async with await anyio.open_file(fd, "rb", buffering=0) as stream:
                while chunk := await stream.read(65536):
                    room = self.output_limit - len(data)
                    if room > 0:
                        data += chunk[:room]
                    if len(chunk) > room:
                        truncated = True
            return bytes(data)

        # A child the command left behind may hold stdout open: wait for the command itself, kill
        # everything of its uid, and only then read the pipes to their end.
        readers = asyncio.gather(capped(out_r), capped(err_r))
        try:
            await asyncio.wait_for(proc.wait(), limit)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with anyio.CancelScope(shield=True):
                await self._kill(lease, proc)
                await proc.wait()
                await readers
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise CommandFailed(f"{argv[0]} did not finish within {limit:g} s and was killed") from exc
        with anyio.CancelScope(shield=True):
            await self._kill(lease, proc)
            out, err = await readers
        return CommandResult(
            argv=argv,
            exit_code=proc.returncode if proc.returncode is not None else -1,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            truncated=truncated,
            duration_s=round(time.monotonic() - started, 3),
        )

    async def _lease(self, limit: float) -> Lease:
        """A free sandbox uid, waiting up to ``limit`` seconds for one; or no uid when unsandboxed."""
        s = self.settings
        exposed = exposed_secret_files(os.environ)
        if exposed:
            raise CommandFailed(
                "refusing to run commands: these secret files are readable by other users, so by the "
                f"sandbox too: {', '.join(exposed)} (chmod 0600, or keep them in a directory others cannot enter)"
            )
        why = can_switch_uid(s.setpriv, s.uid_base, s.gid)
        if why is not None:
            if s.allow_unsandboxed:
                return Lease(uid=None, home=None)
            raise CommandFailed(
                f"the sandbox cannot switch to uid {s.uid_base} ({why}): run the agent as root or with the "
                f"image's setpriv (SANDBOX_SETPRIV); {UNSANDBOXED_HINT}"
            )
        locks = lock_dir()
        deadline = time.monotonic() + limit
        start = random.randrange(s.uids)
        while True:
            for i in range(s.uids):
                uid = s.uid_base + (start + i) % s.uids
                fd = os.open(locks / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                lease = Lease(uid=uid, home=self._home(uid), fd=fd)
                if await anyio.to_thread.run_sync(live_pids, uid):  # left over from an agent that crashed
                    await self._kill(lease, None)
                return lease
            if time.monotonic() > deadline:
                raise CommandFailed(f"all {s.uids} sandbox uids stayed busy for {limit:g} s (SANDBOX_UIDS)")
            await anyio.sleep(0.05)

    def _check_reachable(self, root: Path) -> None:
        """A sandbox uid must be able to walk down to the call's workspace; say which parent stops it (a home
        directory of mode 0700, say) instead of letting git or pytest fail with a bare 'permission denied'."""
        root = root.resolve()
        if root in self._reachable:
            return
        blocked = unsearchable_parent(root, self.settings.gid)
        if blocked is not None:
            raise CommandFailed(
                f"sandbox uids cannot reach the workspace {root}: {blocked} is not searchable by other users "
                "(chmod o+x it, or put WORKSPACES_DIR and REYNOLDS_WORKSPACES_DIR under a directory such as "
                "/var/lib/reynolds)"
            )
        self._reachable.add(root)

    async def _share_scratch(self, uid: int | None) -> None:
        """Share the agent's own scratch workspace with the sandbox group, once (task workspaces are shared
        by whoever prepares them), and check a sandbox uid can get in."""
        if self._scratch_shared or uid is None:
            return
        try:
            await anyio.to_thread.run_sync(share_tree, self.root)
        except OSError as err:  # e.g. a root-owned tmpfs (mode 1777): usable, if without the ACL
            log.warning("scratch workspace not shared with the sandbox group", root=str(self.root), error=str(err))
        probe = [*self._as_uid(uid), "--", "test", "-w", str(self.root.resolve())]
        done = await anyio.run_process(probe, check=False)
        if done.returncode != 0:
            raise CommandFailed(
                f"sandbox uid {uid} cannot enter {self.root} ({done.stderr.decode(errors='replace').strip()}): "
                "its parent directories must be searchable by others"
            )
        self._scratch_shared = True

    def _home(self, uid: int) -> Path:
        """The uid's own HOME and TMPDIR (mode 0700); made here when the agent runs as root, else baked
        into the image (agents/base/Dockerfile)."""
        home = self.settings.home_root / str(uid)
        if not home.is_dir():
            try:
                self.settings.home_root.mkdir(mode=0o711, parents=True, exist_ok=True)
                home.mkdir(mode=0o700)
                os.chown(home, uid, self.settings.gid)
            except OSError as err:
                raise CommandFailed(f"no sandbox home {home} ({err}): the image makes one per uid") from err
        if home.is_symlink() or home.stat().st_uid != uid:
            raise CommandFailed(f"sandbox home {home} is not owned by uid {uid}")
        return home

    async def _kill(self, lease: Lease, proc: asyncio.subprocess.Process | None) -> None:
        """Kill every process the call started and wait until none runs."""
        if lease.uid is None:  # unsandboxed: the process group is all we can reach
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        killer = [*self._as_uid(lease.uid), "--", "sh", "-c", KILLER, "killer", str(lease.home)]
        for _ in range(REAP_ATTEMPTS):
            done = await asyncio.create_subprocess_exec(
                *killer, stdin=asyncio.subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"}
            )
            await done.wait()
            if not await anyio.to_thread.run_sync(live_pids, lease.uid):
                return
            await anyio.sleep(0.01)
        lease.fd = None  # never closed: the uid stays locked for this process's life, something of it runs
        log.error("sandbox uid has processes that survive SIGKILL; uid taken out of rotation", uid=lease.uid)

    async def _release(self, lease: Lease) -> None:
        if lease.fd is not None:
            os.close(lease.fd)


def lock_dir() -> Path:
    """Where the per-uid lock files live: private to the agent's user, so no sandbox uid can touch them."""
    path = Path(tempfile.gettempdir()) / f"reynolds-sandbox-locks-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if path.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise CommandFailed(f"sandbox lock directory {path} must be a directory only this user can use")
    return path


def installed(name: str, hint: str) -> str:
    """The path of an engine's executable, on PATH or next to this Python (a virtualenv's bin/, where pip puts
    the binaries a wheel ships); NotConfigured with ``hint`` (how to install it) when it is missing."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise NotConfigured(f"{name} is not installed: {hint}")
    return found
