"""GitHub tracking: a tracking issue per task that asked for it, with a checklist of its subtasks, kept up to
date while the task runs and closed when it ends.

Best effort by design: a GitHub failure never fails or delays a task. Each round of the sync loop claims a few
tracked tasks in Postgres (so several Reynolds processes share the work without doubling it), renders the
checklist and writes it; a failure is logged, counted (``reynolds_github_sync_failures_total``) and retried on
a later round, up to ``MAX_FAILURES`` times per task.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
import structlog
from github import Auth, Github, GithubException

from reynolds.models import SubtaskState, TaskState, TaskView

log = structlog.get_logger("reynolds.tracking")
MAX_FAILURES = 5
BATCH = 10
SYNC_EVERY_S = 5.0
MARKS = {SubtaskState.SUCCEEDED: "x", SubtaskState.FAILED: "x", SubtaskState.SKIPPED: " ", SubtaskState.CANCELLED: " "}


def render(view: TaskView) -> str:
    """The issue body: where the task stands, then one checklist line per subtask."""
    lines = [
        f"Reynolds task `{view.task_id}` is **{view.state}**.",
        "",
        *([f"> {view.goal}", ""] if view.goal else []),
    ]
    for s in view.subtasks:
        mark = MARKS.get(s.state, " ")
        detail = f" — {s.error}" if s.error else ""
        lines.append(f"- [{mark}] `{s.id}`: {s.tool} on {s.pool} — {s.state}{detail[:200]}")
    if view.message:
        lines += ["", view.message]
    return "\n".join(lines)


class GitHubTracker:
    """Writes tracking issues through PyGithub (blocking; every call runs in a worker thread)."""

    def __init__(self, token: str, repo: str, base_url: str) -> None:
        self.repo_name = repo
        self._github = Github(auth=Auth.Token(token), base_url=base_url, retry=None, timeout=15)

    @functools.cached_property
    def _repo(self) -> Any:
        return self._github.get_repo(self.repo_name)

    def _open(self, view: TaskView) -> int:
        title = f"Reynolds: {view.goal or 'task ' + view.task_id}"[:250]
        return self._repo.create_issue(title=title, body=render(view)).number

    def _update(self, number: int, view: TaskView, close: bool) -> None:
        issue = self._repo.get_issue(number)
        if close:
            issue.edit(
                body=render(view),
                state="closed",
                state_reason="completed" if view.state == TaskState.SUCCEEDED else "not_planned",
            )
        else:
            issue.edit(body=render(view))

    async def sync(self, view: TaskView, issue: int | None) -> int:
        """Open or update the tracking issue of ``view`` (closing it when the task has ended); its number."""
        if issue is None:
            issue = await anyio.to_thread.run_sync(self._open, view)
        await anyio.to_thread.run_sync(self._update, issue, view, view.state != TaskState.RUNNING)
        return issue


def describe(err: Exception) -> str:
    if isinstance(err, GithubException):
        message = err.data.get("message") if isinstance(err.data, dict) else err.data
        return f"GitHub answered {err.status}: {message}"
    return f"{type(err).__name__}: {err}"
