"""The devops agent's GitHub tools (PyGithub, githubapi.py): issues, pull requests, workflow runs, files.

Reads are open-world and read-only; creating and commenting add to GitHub; updating and closing change
what is there, so the planner only runs them when a goal names them."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.devops import githubapi
from agents.devops.reports import context
from agents.runtime import AgentRuntime
from agents.runtime.annotations import ADD_REMOTE, CHANGE_REMOTE, READ_REMOTE
from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

PROCESSES = "team/processes.json"
PREFERENCES = "team/preferences.json"

Repo = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="repository as owner/name")]
Number = Annotated[int, Field(ge=1, description="issue or pull request number")]
Limit = Annotated[int, Field(ge=1, le=500, description="at most this many results")]
Title = Annotated[str, Field(min_length=1, max_length=256)]
Body = Annotated[str, Field(min_length=1, max_length=65536)]


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    register_issue_writes(server, runtime.layers)
    register_reads(server)
    register_comments_and_runs(server, runtime.layers)


def signed(layers: Layers, body: str) -> str:
    """``body`` with the team's comment signature when its preferences ask for one."""
    github = context(layers, PREFERENCES).get("github", {})
    if github.get("sign_comments") and github.get("comment_signature"):
        return f"{body}\n\n— {github['comment_signature']}"
    return body


def register_issue_writes(server: MCPServer, layers: Layers) -> None:
    @server.tool(annotations=ADD_REMOTE)
    async def github_create_issue(
        repo: Repo,
        title: Title,
        body: Annotated[str, Field(max_length=65536)] = "",
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
    ) -> githubapi.Issue:
        """Open a new GitHub issue in `repo` (owner/name). The team's default labels from
        context/team/preferences.json (github.issue_labels) are added. Returns the created issue
        with its number and web URL. Needs GITHUB_TOKEN_FILE."""
        wanted = [*(labels or []), *context(layers, PREFERENCES).get("github", {}).get("issue_labels", [])]
        merged = list(dict.fromkeys(wanted))
        return await githubapi.run(
            f"repository {repo}", githubapi.create_issue, repo, title, body, merged, assignees or []
        )

    @server.tool(annotations=CHANGE_REMOTE)
    async def github_update_issue(
        repo: Repo,
        number: Number,
        title: Title | None = None,
        body: str | None = None,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        state: Literal["open", "closed"] | None = None,
    ) -> githubapi.Issue:
        """Change an existing GitHub issue: title, body, labels (replaces the set), assignees
        (replaces the set) or state (open/closed). Only the fields you pass change."""
        fields = {"title": title, "body": body, "labels": labels, "assignees": assignees, "state": state}
        changes = {k: v for k, v in fields.items() if v is not None}
        if not changes:
            raise ToolError("nothing to update: pass at least one of title, body, labels, assignees, state")
        return await githubapi.run(f"issue {repo}#{number}", githubapi.update_issue, repo, number, changes)

    @server.tool(annotations=CHANGE_REMOTE)
    async def github_close_issue(
        repo: Repo,
        number: Number,
        reason: Literal["completed", "not_planned"] = "completed",
        comment: Annotated[str, Field(max_length=65536)] | None = None,
    ) -> githubapi.Issue:
        """Close a GitHub issue as completed or not_planned, optionally posting `comment` first
        (say why it is closed). Returns the issue in its new state."""
        note = signed(layers, comment) if comment else None
        return await githubapi.run(f"issue {repo}#{number}", githubapi.close_issue, repo, number, reason, note)


def register_reads(server: MCPServer) -> None:
    @server.tool(annotations=READ_REMOTE)
    async def github_list_issues(
        repo: Repo,
        state: Literal["open", "closed", "all"] = "open",
        labels: list[str] | None = None,
        limit: Limit = 30,
    ) -> githubapi.IssueList:
        """List issues (not pull requests) of a GitHub repository, newest first, filtered by state and
        by labels (an issue must carry all of them)."""
        return await githubapi.run(f"repository {repo}", githubapi.list_issues, repo, state, labels or [], limit)

    @server.tool(annotations=READ_REMOTE)
    async def github_list_pulls(
        repo: Repo,
        state: Literal["open", "closed", "all"] = "open",
        base: str | None = None,
        limit: Limit = 30,
    ) -> githubapi.PullList:
        """List pull requests of a GitHub repository (optionally only those targeting branch `base`):
        number, title, state, draft, author, head and base branches."""
        return await githubapi.run(f"repository {repo}", githubapi.list_pulls, repo, state, base, limit)

    @server.tool(annotations=READ_REMOTE)
    async def github_get_pull(repo: Repo, number: Number) -> githubapi.Pull:
        """One pull request in detail: body, mergeability, merged flag, lines added/deleted, files changed."""
        return await githubapi.run(f"pull request {repo}#{number}", githubapi.get_pull, repo, number)

    @server.tool(annotations=READ_REMOTE)
    async def github_list_workflow_runs(
        repo: Repo,
        branch: str | None = None,
        status: Annotated[
            str | None,
            Field(description="completed, in_progress, queued, success, failure, cancelled, ... (GitHub's filter)"),
        ] = None,
        limit: Limit = 20,
    ) -> githubapi.WorkflowRunList:
        """List GitHub Actions workflow runs of a repository, newest first, optionally for one branch or
        status; counts the failed ones. Use before github_rerun_failed_jobs to find a run id."""
        return await githubapi.run(f"repository {repo}", githubapi.list_runs, repo, branch, status, limit)

    @server.tool(annotations=READ_REMOTE)
    async def github_read_file(
        repo: Repo,
        path: Annotated[str, Field(min_length=1, max_length=1000, description="path inside the repository")],
        ref: Annotated[str | None, Field(description="branch, tag or commit; default branch if omitted")] = None,
    ) -> githubapi.RepoFile:
        """Read a text file (up to 1 MB) from a GitHub repository at a branch, tag or commit; for a
        directory, returns its entry names instead."""
        return await githubapi.run(f"{path} in {repo}", githubapi.read_file, repo, path.strip("/"), ref)


def register_comments_and_runs(server: MCPServer, layers: Layers) -> None:
    @server.tool(annotations=ADD_REMOTE)
    async def github_comment_issue(repo: Repo, number: Number, body: Body) -> githubapi.Comment:
        """Add a comment to a GitHub issue (signed as the team's preferences ask). Returns the comment's id and URL."""
        return await githubapi.run(
            f"issue {repo}#{number}", githubapi.comment_issue, repo, number, signed(layers, body)
        )

    @server.tool(annotations=ADD_REMOTE)
    async def github_comment_pull(repo: Repo, number: Number, body: Body) -> githubapi.Comment:
        """Add a conversation comment to a pull request (e.g. a review summary or CI diagnosis)."""
        return await githubapi.run(
            f"pull request {repo}#{number}", githubapi.comment_pull, repo, number, signed(layers, body)
        )

    @server.tool(annotations=ADD_REMOTE)
    async def github_rerun_failed_jobs(
        repo: Repo, run_id: Annotated[int, Field(ge=1, description="workflow run id")]
    ) -> githubapi.Rerun:
        """Re-run only the failed jobs of a completed, failed GitHub Actions run. Refuses runs that are
        still going, succeeded, or already used the re-runs the team allows
        (context/team/processes.json ci.rerun_failed_jobs_max)."""
        limit = context(layers, PROCESSES).get("ci", {}).get("rerun_failed_jobs_max")
        return await githubapi.run(f"workflow run {run_id} in {repo}", githubapi.rerun_failed, repo, run_id, limit)
