"""Task workspaces as agents see them: the ``_meta`` key that names a call's workspace, and how a
prepared workspace tree is made usable by sandboxed commands."""

from __future__ import annotations

from pathlib import Path

# Reynolds puts the task id here in every call's ``_meta``; the workspace is ``<WORKSPACES_DIR>/<task id>``.
WORKSPACE_META_KEY = "reynolds/workspace"


def share_tree(path: Path) -> None:
    """Make a freshly prepared workspace tree readable and writable by the sandbox identity that runs
    commands on it (see agents/runtime/sandbox.py). Called once, by whoever prepares the tree."""
