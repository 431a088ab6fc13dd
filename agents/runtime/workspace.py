"""Task workspaces as agents see them: the ``_meta`` key that names a call's workspace, and how a
prepared workspace tree is made usable by sandboxed commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from agents.runtime.settings import SandboxSettings

# Reynolds puts the task id here in every call's ``_meta``; the workspace is ``<WORKSPACES_DIR>/<task id>``.
WORKSPACE_META_KEY = "reynolds/workspace"


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
    gid = SandboxSettings().gid
    entries = [f"g:{gid}:rwX", f"u:{os.geteuid()}:rwX"]  # the preparer keeps access to what sandboxes create
    acl = ",".join([*entries, *(f"d:{e}" for e in entries)])
    try:
        done = subprocess.run(["setfacl", "-R", "-P", "-m", acl, "--", str(path)], capture_output=True, text=True)
    except FileNotFoundError as err:
        raise OSError("sharing a workspace with the sandbox needs setfacl (Debian package acl)") from err
    if done.returncode != 0:
        raise OSError(f"could not share {path} with sandbox group {gid}: {done.stderr.strip()}")
