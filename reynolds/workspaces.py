"""Task workspaces on the Reynolds side: preparing a task's tree before its first call, diffing it
against where it started, reading files from it, enforcing its size cap, and removing it after the TTL.

A task's tree is ``<REYNOLDS_WORKSPACES_DIR>/<task id>``: a clone of a git repository pinned to the commit
its ref resolved to, a copy of a project directory (the source is never modified), or an empty scratch
directory. Every agent replica mounts the same storage at the same path (agents/runtime/workspace.py).
Right after it is made, a clone or copy is committed into a baseline repository kept *outside* it
(``<root>/.baselines/<task id>.git``; a scratch tree gets an empty one only if it has files at the end), so
a diff covers every source and never touches a repository's
own index. The functions here are synchronous (files and git); the async wrappers run them in a thread.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import structlog
from pydantic import BaseModel

from agents.runtime.workspace import share_tree, share_what_is_made_in
from reynolds import errors
from reynolds.config import Settings
from reynolds.models import TERMINAL_TASK_STATES, TaskView, WorkspaceChanges, WorkspaceSpec, WorkspaceView

log = structlog.get_logger("reynolds.workspaces")

BASELINES = ".baselines"  # under the workspaces root, beside (never inside) the trees
MAX_CHANGED_FILES = 1000
# never part of a task's changes: agents' own reports (pytest junit files) and what running the code leaves
BASELINE_EXCLUDE = (".reynolds/", "__pycache__/", "*.pyc", ".pytest_cache/", ".ruff_cache/")
GIT_TIMEOUT_S = 120.0
EXPIRE_EVERY_S = 60.0
REF_PATTERN = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/+-]{1,255}(?<![./])$")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!/)")


class FileContent(BaseModel):
    path: str
    size_bytes: int
    text: str | None = None
    base64: str | None = None


# ---------------------------------------------------------------------- git
def git_argv(*args: str) -> list[str]:
    """git with nothing a repository or this host's configuration could make it run.
    The one place Reynolds builds a git command line (switch to agents.runtime.gitsafe.git_argv)."""
    hardening = {
        "core.hooksPath": "/dev/null",
        "core.fsmonitor": "false",
        "core.sshCommand": "ssh -o BatchMode=yes",
        "credential.helper": "",
        "protocol.allow": "never",
        "safe.bareRepository": "explicit",
        "diff.external": "",
        "core.pager": "cat",
        "commit.gpgSign": "false",
        "core.autocrlf": "false",
        "core.quotePath": "false",
    }
    return ["git", *(x for k, v in hardening.items() for x in ("-c", f"{k}={v}")), *args]


def git_env() -> dict[str, str]:
    """No system or user configuration, no prompts (switch to agents.runtime.gitsafe.git_env)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_AUTHOR_NAME": "Reynolds",
        "GIT_AUTHOR_EMAIL": "reynolds@localhost",
        "GIT_COMMITTER_NAME": "Reynolds",
        "GIT_COMMITTER_EMAIL": "reynolds@localhost",
    }


def run_git(
    *args: str, transports: tuple[str, ...] = (), timeout_s: float = GIT_TIMEOUT_S, env: dict[str, str] | None = None
) -> str:
    """Run hardened git; its stdout, or WorkspaceError with its stderr."""
    allow = [x for t in transports for x in ("-c", f"protocol.{t}.allow=always")]
    argv = git_argv(*allow, *args)
    try:
        done = subprocess.run(
            argv, env={**git_env(), **(env or {})}, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as err:
        raise errors.WorkspaceError(f"git {args[0] if args else ''} took longer than {timeout_s:g} s") from err
    except FileNotFoundError as err:
        raise errors.WorkspaceError("git is not installed where Reynolds runs; task workspaces need it") from err
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()[-2000:]
        raise errors.WorkspaceError(f"git failed (exit {done.returncode}): {message}")
    return done.stdout.decode(errors="replace")


# ---------------------------------------------------------------------- checking a spec
def transport_of(url: str) -> str:
    """The transport a git URL would use: https, ssh, file, ... (scp-like ``user@host:path`` is ssh)."""
    if SCP_LIKE.match(url):
        return "ssh"
    scheme = urlsplit(url).scheme.lower()
    return scheme if "://" in url else ("ext" if "::" in url else "file")


def check_git_url(settings: Settings, url: str) -> str:
    """The URL's transport, or WorkspaceError naming what is allowed."""
    if url.startswith("-") or any(ord(c) < 0x21 for c in url):
        raise errors.WorkspaceError(f"{url[:200]!r} is not a git URL")
    transport = transport_of(url)
    allowed = [*settings.workspace_git_transports, *(["file"] if settings.workspace_allow_file_urls else [])]
    if transport not in allowed:
        raise errors.WorkspaceError(
            f"git transport {transport!r} is not allowed for workspaces; allowed: {', '.join(allowed)} "
            "(REYNOLDS_WORKSPACE_GIT_TRANSPORTS, REYNOLDS_WORKSPACE_ALLOW_FILE_URLS)"
        )
    if transport == "file" and not url.startswith("file://"):
        raise errors.WorkspaceError(f"a local repository is named as a file:// URL, not {url[:200]!r}")
    return transport


def project_dir(settings: Settings, name: str) -> Path:
    """The project directory ``name`` under the projects root, or WorkspaceError saying why not."""
    root = settings.projects_dir.resolve()
    relative = PurePosixPath(name)
    if "\x00" in name or "\\" in name or relative.is_absolute() or ".." in relative.parts:
        raise errors.WorkspaceError(f"project {name!r} must be a relative name under the projects root, without '..'")
    if not root.is_dir():
        raise errors.WorkspaceError(f"the projects root {root} does not exist (REYNOLDS_PROJECTS_DIR)")
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise errors.WorkspaceError(f"project {name!r} leads outside the projects root (a symlink?)")
    if not path.is_dir():
        raise errors.WorkspaceError(f"project {name!r} is not a directory under the projects root")
    return path


def check(settings: Settings, spec: WorkspaceSpec | None) -> None:
    """Refuse a spec that cannot work, before anything is made (plan_task shows the same errors)."""
    if spec is None:
        return
    if spec.project is not None:
        project_dir(settings, spec.project)
    if spec.git is not None:
        check_git_url(settings, spec.git)
    if spec.ref is not None and not REF_PATTERN.match(spec.ref):
        raise errors.WorkspaceError(f"ref {spec.ref[:100]!r} is not a branch, tag or commit name")


# ---------------------------------------------------------------------- preparing
def tree_of(settings: Settings, task_id: str) -> Path:
    return settings.workspaces_dir / _task_uuid(task_id)


def baseline_of(settings: Settings, task_id: str) -> Path:
    return settings.workspaces_dir / BASELINES / f"{_task_uuid(task_id)}.git"


def _task_uuid(task_id: str) -> str:
    try:
        return str(uuid.UUID(task_id))
    except ValueError as err:
        raise errors.InvalidRequest(f"{task_id[:80]!r} is not a task id (a UUID)") from err


async def prepare(settings: Settings, task_id: str, spec: WorkspaceSpec | None) -> WorkspaceView:
    """Make the task's tree and its baseline; on any failure nothing is left behind."""
    check(settings, spec)
    return await anyio.to_thread.run_sync(prepare_sync, settings, task_id, spec or WorkspaceSpec())


def prepare_sync(settings: Settings, task_id: str, spec: WorkspaceSpec) -> WorkspaceView:
    tree = tree_of(settings, task_id)
    try:
        (settings.workspaces_dir / BASELINES).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise errors.WorkspaceError(f"cannot create workspaces under {settings.workspaces_dir}: {err}") from err
    _outside_any_repository(settings.workspaces_dir.resolve())
    inherits = _trees_inherit_sharing(settings.workspaces_dir.resolve())
    view = WorkspaceView(source="scratch", path=str(tree))
    try:
        if spec.git:
            view = _clone(settings, spec, tree)
        elif spec.project is not None:
            view = _copy_project(settings, spec.project, tree)
        else:
            tree.mkdir()  # its baseline is the empty tree: made only if the task leaves files (changes_sync)
        if view.source != "scratch":
            view.size_bytes = _enforce_cap(settings, tree)
            _snapshot(tree, baseline_of(settings, task_id))
        if view.source != "scratch" or not inherits:
            share_tree(tree)
    except BaseException:
        remove(settings, task_id)
        raise
    log.info("workspace prepared", task_id=task_id, source=view.source, size_bytes=view.size_bytes)
    return view


@functools.lru_cache(maxsize=8)  # once per root and process
def _trees_inherit_sharing(root: Path) -> bool:
    """Whether a tree made in ``root`` is shared with the sandbox from birth (a default ACL on the root; the
    baselines are kept out of it). Where ACLs cannot be set that way, each tree is shared on its own."""
    try:
        share_what_is_made_in(root, root / BASELINES)
    except OSError as err:
        log.warning("workspaces root takes no default ACL; sharing each tree instead", root=str(root), error=str(err))
        return False
    return True


@functools.lru_cache(maxsize=8)  # asked once per root and process: every task's preparation would pay a git run
def _outside_any_repository(root: Path) -> None:
    """git finds a repository by walking up from where it runs: in a tree without one of its own (scratch, a
    copied worktree) it would work on whatever repository holds the workspaces root. Refuse such a root."""
    try:
        top = run_git("-C", str(root), "rev-parse", "--show-toplevel").strip()
    except errors.WorkspaceError:
        return
    raise errors.WorkspaceError(
        f"the workspaces root {root} is inside the git repository {top}; git in a task's tree could change it. "
        "Put REYNOLDS_WORKSPACES_DIR (and the agents' WORKSPACES_DIR) outside any repository"
    )


def _clone(settings: Settings, spec: WorkspaceSpec, tree: Path) -> WorkspaceView:
    assert spec.git
    transport = check_git_url(settings, spec.git)
    timeout = settings.workspace_clone_timeout_s
    run_git("clone", "--no-checkout", "--quiet", "--", spec.git, str(tree), transports=(transport,), timeout_s=timeout)
    branch, commit = _resolve(tree, spec.ref)
    target = ["-B", branch, commit] if branch else ["--detach", commit]
    run_git("-C", str(tree), "checkout", "--quiet", "--force", *target, timeout_s=timeout)
    return WorkspaceView(
        source="git", location=_without_credentials(spec.git), ref=spec.ref, commit=commit, path=str(tree)
    )


def _resolve(tree: Path, ref: str | None) -> tuple[str | None, str]:
    """(branch to check out or None, commit) for ``ref``: a branch, a tag or a commit; the default branch if None."""
    if ref is None:
        branch = run_git("-C", str(tree), "symbolic-ref", "--short", "HEAD").strip()
        return branch, _commit(tree, "HEAD") or ""
    for candidate, branch in ((f"refs/remotes/origin/{ref}", ref), (f"refs/tags/{ref}", None), (ref, None)):
        if commit := _commit(tree, candidate):
            return branch, commit
    raise errors.WorkspaceError(f"ref {ref!r} is not a branch, tag or commit of the repository")


def _commit(tree: Path, name: str) -> str | None:
    try:
        return run_git(
            "-C", str(tree), "rev-parse", "--quiet", "--verify", "--end-of-options", f"{name}^{{commit}}"
        ).strip()
    except errors.WorkspaceError:
        return None


def _copy_project(settings: Settings, name: str, tree: Path) -> WorkspaceView:
    source = project_dir(settings, name)
    skip = {settings.workspaces_dir.resolve()}
    notes: list[str] = []
    tree.mkdir()
    _copy_dir(source, tree, _Copy(set(settings.workspace_project_exclude), skip, settings.workspace_max_bytes, notes))
    return WorkspaceView(source="project", location=name, path=str(tree), notes=notes[:50])


@dataclass
class _Copy:
    exclude: set[str]  # names never copied
    skip: set[Path]  # resolved paths never copied (the workspaces root, when it is inside the project)
    cap: int
    notes: list[str]
    copied: int = 0


def _copy_dir(src: Path, dst: Path, job: _Copy) -> None:
    """Copy ``src`` into ``dst`` without following links. Excluded names, the workspaces root, special files
    and ``.git`` files (pointers into another repository) are left out and noted; WorkspaceTooLarge past the cap."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        source, target = Path(entry.path), dst / entry.name
        info = entry.stat(follow_symlinks=False)
        if entry.name in job.exclude or source.resolve() in job.skip:
            job.notes.append(f"left out {entry.name} ({source.parent})")
        elif stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISDIR(info.st_mode):
            target.mkdir()
            _copy_dir(source, target, job)
        elif stat.S_ISREG(info.st_mode) and entry.name != ".git":
            job.copied += info.st_size
            if job.copied > job.cap:
                raise errors.WorkspaceTooLarge(
                    f"the project is larger than the workspace cap of {job.cap} bytes (REYNOLDS_WORKSPACE_MAX_BYTES)"
                )
            shutil.copy2(source, target, follow_symlinks=False)
        else:
            job.notes.append(f"left out {source} (a .git pointer or not a regular file, directory or link)")


def _snapshot(tree: Path, baseline: Path) -> None:
    """Commit the tree into a baseline repository of its own. Like any git add it leaves out ``.git`` and
    what the tree's ``.gitignore`` files ignore, so the diff shows what a reviewer would want to see."""
    where = ("--git-dir", str(baseline), "--work-tree", str(tree))
    _init_baseline(baseline)
    run_git(*where, "add", "--all", ".")
    run_git(*where, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", "workspace baseline")


def _init_baseline(baseline: Path) -> None:
    run_git("init", "--quiet", "--bare", str(baseline))
    (baseline / "info" / "exclude").write_text("\n".join(BASELINE_EXCLUDE) + "\n")


# ---------------------------------------------------------------------- size
def size_of(tree: Path) -> int:
    """Bytes of every regular file under ``tree``, links not followed."""
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            info = os.lstat(os.path.join(dirpath, name))
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def _enforce_cap(settings: Settings, tree: Path) -> int:
    size = size_of(tree)
    if size > settings.workspace_max_bytes:
        raise errors.WorkspaceTooLarge(
            f"the workspace is {size} bytes, over the cap of {settings.workspace_max_bytes} bytes "
            "(REYNOLDS_WORKSPACE_MAX_BYTES)"
        )
    return size


async def over_cap(settings: Settings, task_id: str) -> str | None:
    """Why the task's tree is over its size cap after a step, or None."""
    tree = tree_of(settings, task_id)
    if not tree.is_dir():
        return None
    try:
        await anyio.to_thread.run_sync(_enforce_cap, settings, tree)
    except errors.WorkspaceTooLarge as err:
        return str(err)
    return None


# ---------------------------------------------------------------------- diff
def changes_sync(settings: Settings, task_id: str, scratch: bool = False) -> WorkspaceChanges:
    """The tree against its baseline as a unified diff (cut at the setting, full size counted). A scratch
    tree's baseline is the empty tree: nothing to run for one left empty, an empty commit for one that is not."""
    tree, baseline = tree_of(settings, task_id), baseline_of(settings, task_id)
    if scratch and tree.is_dir() and not baseline.is_dir():
        if next(tree.iterdir(), None) is None:
            return WorkspaceChanges(diff="", diff_bytes=0, truncated=False, files=[])
        _init_baseline(baseline)
        with tempfile.TemporaryDirectory() as empty:  # a commit of an index that does not exist: the empty tree
            where = ("--git-dir", str(baseline), "--work-tree", str(tree))
            env = {"GIT_INDEX_FILE": str(Path(empty) / "index")}
            run_git(*where, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", "empty", env=env)
    if not tree.is_dir() or not baseline.is_dir():
        raise errors.NotFound(f"task {task_id} has no workspace here (removed after REYNOLDS_WORKSPACE_TTL_S?)")
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}  # a private index: readers never collide
        where = ("--git-dir", str(baseline), "--work-tree", str(tree))
        run_git(*where, "read-tree", "HEAD", env=env)
        run_git(*where, "add", "--all", ".", env=env)
        names = run_git(*where, "diff", "--cached", "--name-only", "-z", "HEAD", env=env).split("\0")
        diff, size = _bounded_diff(where, env, settings.workspace_diff_max_bytes)
    return WorkspaceChanges(
        diff=diff,
        diff_bytes=size,
        truncated=size > len(diff.encode()),
        files=[n for n in names if n][:MAX_CHANGED_FILES],
    )


def _bounded_diff(where: tuple[str, ...], env: dict[str, str], limit: int) -> tuple[str, int]:
    argv = git_argv(*where, "diff", "--cached", "--no-ext-diff", "--no-textconv", "--no-color", "HEAD")
    with subprocess.Popen(argv, env={**git_env(), **env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout
        kept, total = bytearray(), 0
        for chunk in iter(lambda: proc.stdout.read(65536), b""):  # type: ignore[union-attr]
            total += len(chunk)
            kept += chunk[: max(0, limit - len(kept))]
    return bytes(kept).decode(errors="replace"), total


def _changes_and_size(settings: Settings, task_id: str, scratch: bool) -> tuple[WorkspaceChanges, int]:
    return changes_sync(settings, task_id, scratch), size_of(tree_of(settings, task_id))


async def settle(settings: Settings, store: Any, view: TaskView) -> None:
    """At the end of a task: compute its changes, store them with its workspace record, show them in ``view``.
    Does nothing before the end or once they are stored, so every reader of a finished task may call it."""
    if view.state not in TERMINAL_TASK_STATES or view.workspace is None or view.workspace.changes is not None:
        return
    try:
        scratch = view.workspace.source == "scratch"
        changes, size = await anyio.to_thread.run_sync(_changes_and_size, settings, view.task_id, scratch)
    except (errors.ReynoldsError, OSError) as err:
        view.workspace.notes.append(f"changes unavailable: {err}")
        return
    view.workspace.changes, view.workspace.size_bytes = changes, size
    await store.set_workspace(view.task_id, view.workspace.model_dump(mode="json"))


# ---------------------------------------------------------------------- reading
async def read(settings: Settings, store: Any, task_id: str, path: str) -> FileContent:
    """``read_sync`` for a stored task."""
    if not await store.task_exists(_task_uuid(task_id)):
        raise errors.NotFound(f"no task {task_id}")
    return await anyio.to_thread.run_sync(read_sync, settings, task_id, path)


def read_sync(settings: Settings, task_id: str, path: str) -> FileContent:
    """One file of the task's tree: text when it is UTF-8, base64 otherwise; bounded and confined."""
    tree = tree_of(settings, task_id).resolve()
    if not tree.is_dir():
        raise errors.NotFound(f"task {task_id} has no workspace here (removed after REYNOLDS_WORKSPACE_TTL_S?)")
    target = (tree / path).resolve()
    if (target != tree and tree not in target.parents) or PurePosixPath(path).is_absolute():
        raise errors.InvalidRequest(f"path {path!r} is outside the task's workspace")
    if not target.is_file():
        raise errors.NotFound(f"{path!r} is not a file in the task's workspace")
    size = target.stat().st_size
    if size > settings.workspace_read_max_bytes:
        raise errors.WorkspaceTooLarge(
            f"{path!r} is {size} bytes, over the read limit of {settings.workspace_read_max_bytes} "
            "(REYNOLDS_WORKSPACE_READ_MAX_BYTES)"
        )
    data = target.read_bytes()[: settings.workspace_read_max_bytes]
    relative = target.relative_to(tree).as_posix()
    try:
        return FileContent(path=relative, size_bytes=size, text=data.decode())
    except UnicodeDecodeError:
        return FileContent(path=relative, size_bytes=size, base64=base64.b64encode(data).decode())


# ---------------------------------------------------------------------- expiry
def remove(settings: Settings, task_id: str) -> None:
    for path in (tree_of(settings, task_id), baseline_of(settings, task_id)):
        shutil.rmtree(path, ignore_errors=True)


def _task_dirs(root: Path) -> Iterator[tuple[str, float]]:
    """(task id, modification time) of every tree under ``root``."""
    if not root.is_dir():
        return
    for entry in os.scandir(root):
        try:
            if entry.is_dir(follow_symlinks=False) and str(uuid.UUID(entry.name)) == entry.name:
                yield entry.name, entry.stat(follow_symlinks=False).st_mtime
        except ValueError:
            continue


async def expire(settings: Settings, store: Any) -> list[str]:
    """Remove the trees of tasks that ended more than the TTL ago, and of tasks never stored (a failed
    submission) once they are that old. Returns the task ids removed."""
    found = dict(await anyio.to_thread.run_sync(lambda: list(_task_dirs(settings.workspaces_dir))))
    if not found:
        return []
    ended = await store.workspace_ages(list(found))
    cutoff = time.time() - settings.workspace_ttl_s
    due = [task_id for task_id, mtime in found.items() if _due(task_id, mtime, ended, cutoff)]
    for task_id in due:
        await anyio.to_thread.run_sync(remove, settings, task_id)
        log.info("workspace expired", task_id=task_id)
    return due


def _due(task_id: str, mtime: float, ended: dict[str, float | None], cutoff: float) -> bool:
    """A stored task's tree is due once the task ended before ``cutoff``; a tree with no task once it is that old."""
    if task_id not in ended:
        return mtime < cutoff
    finished = ended[task_id]
    return finished is not None and finished < cutoff


async def expire_forever(settings: Settings, store: Any) -> None:
    """The upkeep loop: ``expire`` every minute; a failed round is logged, the next one tries again."""
    while True:
        try:
            await expire(settings, store)
        except Exception as err:
            log.warning("workspace expiry failed", error=str(err))
        await anyio.sleep(min(EXPIRE_EVERY_S, settings.workspace_ttl_s))


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "://" not in url or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
