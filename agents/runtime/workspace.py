"""Task workspaces as agents see them: the ``_meta`` key that names a call's workspace, the middleware
that makes it the call's current workspace, and how a prepared workspace tree is made usable by
sandboxed commands.

Reynolds prepares ``<WORKSPACES_DIR>/<task id>`` before a task's first call (reynolds/workspaces.py) on
storage every replica mounts at the same path. Each call names its task under ``WORKSPACE_META_KEY``;
``WorkspaceMiddleware`` checks the name and sets a context variable for the length of the call, which
``Layers.workspace`` and ``Sandbox`` read through ``current_root``. The variable is copied into the
worker thread a sync tool runs in (anyio copies the context), so sync and async tools see the same tree.
A call without the key works in the agent's own scratch ``WORKSPACE_DIR``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from agents.runtime.settings import SandboxSettings

# Reynolds puts the task id here in every call's ``_meta``; the workspace is ``<WORKSPACES_DIR>/<task id>``.
WORKSPACE_META_KEY = "reynolds/workspace"

_current: ContextVar[Path | None] = ContextVar("reynolds_workspace", default=None)


class WorkspaceMissing(Exception):
    """A call named a workspace that is not a task id, or that this replica cannot see."""


def current_root(default: Path) -> Path:
    """The workspace of the call being served, or ``default`` (the agent's scratch) outside one."""
    return _current.get() or default


def task_workspace(root: Path, name: Any) -> Path:
    """``root/<name>`` for a task id ``name``, which must exist here as a real directory."""
    if not isinstance(name, str) or not _is_uuid(name):
        raise WorkspaceMissing(f"{WORKSPACE_META_KEY} must be a task id (a UUID), not {str(name)[:80]!r}")
    path = root / name
    if path.is_symlink() or not path.is_dir():
        raise WorkspaceMissing(
            f"workspace {name} is not on this replica under {root}: WORKSPACES_DIR must be the volume "
            "Reynolds prepares task workspaces on (REYNOLDS_WORKSPACES_DIR)"
        )
    return path


class WorkspaceMiddleware:
    """Runs each ``tools/call`` that names a workspace with that workspace as the current one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        meta = (ctx.meta or {}) if ctx.method == "tools/call" else {}
        if WORKSPACE_META_KEY not in meta:
            return await call_next(ctx)
        try:
            path = task_workspace(self.root, meta[WORKSPACE_META_KEY])
        except WorkspaceMissing as err:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(err))], is_error=True)
        token = _current.set(path)
        try:
            return await call_next(ctx)
        finally:
            _current.reset(token)


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def share_tree(path: Path) -> None:
    """Make a freshly prepared workspace tree readable and writable by the sandbox identity that runs
    commands on it (see agents/runtime/sandbox.py). Called once, by whoever prepares the tree.

    Every sandboxed command runs as its own uid, all in group ``SANDBOX_GID``; so the tree gets POSIX
    ACL entries for that group and for the calling user (``rwX``) on every file and directory, and the
    same entries as a *default* ACL on every directory. A default ACL is inherited by whatever is
    created later, whoever creates it (the agent, Reynolds, any sandbox uid) and whatever its umask,
    so one command's output stays writable for the next one's uid and for the agent. Symbolic links
    are not followed (``setfacl -P``), so a link in the tree cannot make this touch anything outside
    it. The parents of ``path`` must be searchable by the group (the workspaces root is ``0755``).
    Needs ``setfacl`` (Debian ``acl``) and a filesystem with ACLs (ext4, xfs, btrfs, tmpfs, overlayfs).
    """
    entries = _entries()
    _setfacl(path, "-R", "-P", "-m", ",".join([*entries, *(f"d:{e}" for e in entries)]))


def share_what_is_made_in(root: Path, keep_private: Path) -> None:
    """Give ``root`` only the *default* ACL ``share_tree`` gives a tree, so that a directory made in it later
    is shared with the sandbox from the start (an empty scratch tree needs no ``setfacl`` of its own), while
    ``root`` itself stays as it is. ``keep_private`` (a directory in ``root``, made first) has any ACL it
    inherited removed, so nothing made in it later is shared."""
    keep_private.mkdir(exist_ok=True)
    _setfacl(keep_private, "-R", "-P", "-b", "-k")
    _setfacl(root, "-m", ",".join(f"d:{e}" for e in _entries()))


def _entries() -> list[str]:
    """The sandbox group's and the preparer's ACL entries (the preparer keeps access to what sandboxes make)."""
    return [f"g:{_sandbox_gid()}:rwX", f"u:{os.geteuid()}:rwX"]


@functools.cache
def _sandbox_gid() -> int:
    return SandboxSettings().gid


def _setfacl(path: Path, *args: str) -> None:
    gid = _sandbox_gid()
    try:
        done = subprocess.run(["setfacl", *args, "--", str(path)], capture_output=True, text=True)
    except FileNotFoundError as err:
        raise OSError("sharing a workspace with the sandbox needs setfacl (Debian package acl)") from err
    if done.returncode != 0:
        raise OSError(f"setfacl could not share {path} with sandbox group {gid}: {done.stderr.strip()}")
