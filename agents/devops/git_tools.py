"""The devops agent's git tools on workspace repositories: status, log, diff, branches, clone.

Every git command runs through the sandbox with hardened git (gitrepo.py); these functions only check
arguments and paths."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.devops import gitrepo
from agents.devops.reports import context
from agents.runtime import AgentRuntime
from agents.runtime.annotations import FETCH, READ
from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

PROCESSES = "team/processes.json"

Limit = Annotated[int, Field(ge=1, le=500, description="at most this many results")]
WorkspacePath = Annotated[str, Field(min_length=1, max_length=1000, description="path relative to the workspace")]


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    register_reads(server, runtime)
    register_clone(server, runtime)


def repo_dir(layers: Layers, repo: str) -> str:
    if not layers.workspace_path(repo).is_dir():
        raise ToolError(f"{repo!r} is not a directory in the workspace")
    return repo


def register_reads(server: MCPServer, runtime: AgentRuntime) -> None:
    layers, sandbox = runtime.layers, runtime.sandbox

    @server.tool(annotations=READ)
    async def git_status(repo: WorkspacePath = ".") -> gitrepo.GitStatus:
        """Status of a git repository in the workspace: branch, HEAD commit, upstream ahead/behind, and
        staged, unstaged, untracked and conflicted files."""
        return await gitrepo.status(sandbox, repo_dir(layers, repo))

    @server.tool(annotations=READ)
    async def git_log(
        repo: WorkspacePath = ".",
        ref: str = "HEAD",
        limit: Limit = 20,
        path: Annotated[str | None, Field(description="only commits touching this path")] = None,
    ) -> gitrepo.GitLog:
        """Recent commits of a git repository in the workspace (newest first): sha, author, ISO date,
        parents and subject; optionally from another ref or only those touching `path`."""
        return await gitrepo.log(sandbox, repo_dir(layers, repo), ref, limit, path)

    @server.tool(annotations=READ)
    async def git_diff(
        repo: WorkspacePath = ".",
        base: Annotated[str | None, Field(description="compare against this commit/branch")] = None,
        target: Annotated[str | None, Field(description="with base: compare base..target")] = None,
        staged: Annotated[bool, Field(description="compare the index with HEAD")] = False,
        paths: list[str] | None = None,
        max_patch_chars: Annotated[int, Field(ge=0, le=2_000_000)] = 100_000,
    ) -> gitrepo.GitDiff:
        """Diff in a git repository in the workspace: per-file added/deleted line counts plus the patch
        (capped at max_patch_chars). Default: unstaged changes; staged=true: the index vs HEAD;
        base: working tree vs base; base+target: between two revisions."""
        return await gitrepo.diff(sandbox, repo_dir(layers, repo), base, target, staged, paths or [], max_patch_chars)

    @server.tool(annotations=READ)
    async def git_branches(repo: WorkspacePath = ".") -> gitrepo.GitBranches:
        """Local and remote-tracking branches of a git repository in the workspace, with commit,
        upstream, last commit date, the current branch, and which are protected per the team's
        process (context/team/processes.json)."""
        protected = context(layers, PROCESSES).get("repositories", {}).get("protected_branches", [])
        return await gitrepo.branches(sandbox, repo_dir(layers, repo), protected)


def register_clone(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=FETCH)
    async def git_clone(
        source: Annotated[
            str, Field(min_length=1, description="https/ssh/git URL, or a repository path in the workspace")
        ],
        dest: WorkspacePath,
        branch: str | None = None,
        depth: Annotated[int | None, Field(ge=1)] = None,
    ) -> gitrepo.CloneResult:
        """Clone a git repository into `dest` in the workspace, from a URL (https, ssh, git) or from a
        repository already in the workspace. Fails with git's reason when the source is unreachable."""
        if source.startswith("-"):
            raise ToolError(f"source {source!r} is not a repository URL or path")
        target = layers.workspace_path(dest, must_exist=False)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ToolError(f"{dest!r} already exists in the workspace and is not an empty directory")
        if gitrepo.is_remote(source):
            origin = source
        else:
            local = layers.workspace_path(source.removeprefix("file://"))
            if not local.is_dir():
                raise ToolError(f"{source!r} is not a directory in the workspace")
            origin = str(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        relative = target.relative_to(layers.workspace.resolve()).as_posix()
        return await gitrepo.clone(runtime.sandbox, origin, relative, branch, depth)
