"""GitHub through PyGithub: issues, pull requests, workflow runs and file contents, as small models.

PyGithub is synchronous, so callers run these functions in a worker thread (``run``). GitHub errors
become ToolErrors whose message says what went wrong (bad token, not found, validation failed)."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import islice
from typing import Any, Literal, TypeVar

import anyio
import requests
from github import Auth, Github, GithubException
from pydantic import BaseModel, Field

from agents.devops.settings import load_settings
from agents.runtime.errors import NotConfigured, ToolError

T = TypeVar("T")
MAX_FILE_BYTES = 1_000_000
RERUNNABLE = {"failure", "cancelled", "timed_out", "startup_failure"}


class Issue(BaseModel):
    number: int
    title: str
    state: str
    state_reason: str | None = None
    body: str | None = None
    labels: list[str]
    assignees: list[str]
    author: str | None
    comments: int
    url: str = Field(description="web URL")
    created_at: str | None
    updated_at: str | None


class IssueList(BaseModel):
    repo: str
    state: str
    count: int
    issues: list[Issue]


class Comment(BaseModel):
    repo: str
    number: int = Field(description="issue or pull request number")
    id: int
    body: str
    url: str


class Pull(BaseModel):
    number: int
    title: str
    state: str
    draft: bool
    merged: bool
    author: str | None
    head: str
    base: str
    url: str
    body: str | None = None
    additions: int | None = None
    deletions: int | None = None
    changed_files: int | None = None
    mergeable: bool | None = None
    created_at: str | None


class PullList(BaseModel):
    repo: str
    state: str
    count: int
    pulls: list[Pull]


class WorkflowRun(BaseModel):
    id: int
    name: str | None
    branch: str | None
    sha: str
    event: str
    status: str
    conclusion: str | None
    run_number: int
    attempt: int | None
    url: str
    created_at: str | None


class WorkflowRunList(BaseModel):
    repo: str
    count: int
    failed: int = Field(description="runs in the list that concluded failure, cancelled or timed_out")
    runs: list[WorkflowRun]


class Rerun(BaseModel):
    repo: str
    run_id: int
    requested: bool
    previous_conclusion: str | None
    attempt: int | None = Field(description="attempt number of the run that failed")
    url: str


class RepoFile(BaseModel):
    repo: str
    path: str
    ref: str | None
    kind: Literal["file", "dir"]
    sha: str | None = None
    size: int | None = None
    content: str | None = Field(None, description="UTF-8 text of a file")
    entries: list[str] | None = Field(None, description="names in a directory (directories end with /)")


def repository(full_name: str) -> Any:
    """A lazy handle on ``owner/name``: no request until an operation needs one."""
    return client().get_repo(full_name)


def client() -> Github:
    settings = load_settings()
    if not settings.github_token:
        raise NotConfigured("GitHub token not configured: set GITHUB_TOKEN_FILE (or GITHUB_TOKEN)")
    return Github(
        auth=Auth.Token(settings.github_token),
        base_url=settings.github_base_url.rstrip("/"),
        timeout=settings.github_timeout_s,
        per_page=100,
        retry=None,  # a failed call is reported; the orchestrator owns retries and backoff
        seconds_between_writes=settings.github_write_interval_s or None,
        lazy=True,
    )


async def run(what: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking PyGithub call in a worker thread, turning its failures into clear ToolErrors."""
    return await anyio.to_thread.run_sync(functools.partial(_translated, what, fn, *args))


def _translated(what: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except GithubException as err:
        message = err.data.get("message") if isinstance(err.data, dict) else None
        if err.status == 401:
            raise ToolError(
                f"GitHub rejected the token (401 {message or 'Bad credentials'}): check GITHUB_TOKEN_FILE"
            ) from err
        if err.status == 404:
            raise ToolError(f"GitHub: {what} not found (404), or the token cannot see it") from err
        if err.status == 403:
            raise ToolError(f"GitHub refused {what} (403): {message or 'forbidden or rate limited'}") from err
        if err.status == 422:
            errors = err.data.get("errors") if isinstance(err.data, dict) else None
            raise ToolError(f"GitHub rejected {what} (422 {message}): {errors}") from err
        raise ToolError(f"GitHub error {err.status} on {what}: {message or err}") from err
    except requests.RequestException as err:
        raise ToolError(f"cannot reach GitHub for {what}: {err.__class__.__name__}: {err}") from err


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _issue(i: Any) -> Issue:
    return Issue(
        number=i.number,
        title=i.title,
        state=i.state,
        state_reason=i.state_reason,
        body=i.body,
        labels=[label.name for label in i.labels],
        assignees=[a.login for a in i.assignees],
        author=i.user.login if i.user else None,
        comments=i.comments,
        url=i.html_url,
        created_at=_iso(i.created_at),
        updated_at=_iso(i.updated_at),
    )


def _pull(p: Any, detail: bool) -> Pull:
    pull = Pull(
        number=p.number,
        title=p.title,
        state=p.state,
        draft=bool(p.draft),
        merged=bool(p.merged),
        author=p.user.login if p.user else None,
        head=p.head.ref,
        base=p.base.ref,
        url=p.html_url,
        created_at=_iso(p.created_at),
    )
    if detail:
        pull.body, pull.mergeable = p.body, p.mergeable
        pull.additions, pull.deletions, pull.changed_files = p.additions, p.deletions, p.changed_files
    return pull


def _run(r: Any) -> WorkflowRun:
    return WorkflowRun(
        id=r.id,
        name=r.name,
        branch=r.head_branch,
        sha=r.head_sha,
        event=r.event,
        status=r.status,
        conclusion=r.conclusion,
        run_number=r.run_number,
        attempt=r.run_attempt,
        url=r.html_url,
        created_at=_iso(r.created_at),
    )


def _first(items: Iterable[T], limit: int) -> list[T]:
    return list(islice(items, limit))


# --- operations (blocking; call through ``run``) ------------------------------------------------------


def create_issue(repo: str, title: str, body: str, labels: list[str], assignees: list[str]) -> Issue:
    return _issue(repository(repo).create_issue(title, body=body, labels=labels, assignees=assignees))


def update_issue(repo: str, number: int, changes: dict[str, Any]) -> Issue:
    issue = repository(repo).get_issue(number)
    issue.edit(**changes)
    return _issue(issue)


def comment_issue(repo: str, number: int, body: str) -> Comment:
    c = repository(repo).get_issue(number).create_comment(body)
    return Comment(repo=repo, number=number, id=c.id, body=c.body, url=c.html_url)


def close_issue(repo: str, number: int, reason: str, comment: str | None) -> Issue:
    issue = repository(repo).get_issue(number)
    if comment:
        issue.create_comment(comment)
    issue.edit(state="closed", state_reason=reason)
    return _issue(issue)


def list_issues(repo: str, state: str, labels: list[str], limit: int) -> IssueList:
    kwargs: dict[str, Any] = {"state": state}
    if labels:
        kwargs["labels"] = labels
    found = repository(repo).get_issues(**kwargs)
    # GitHub's issue list includes pull requests; they have their own tools.
    issues = _first((_issue(i) for i in found if i.pull_request is None), limit)
    return IssueList(repo=repo, state=state, count=len(issues), issues=issues)


def list_pulls(repo: str, state: str, base: str | None, limit: int) -> PullList:
    kwargs: dict[str, Any] = {"state": state}
    if base:
        kwargs["base"] = base
    pulls = _first((_pull(p, detail=False) for p in repository(repo).get_pulls(**kwargs)), limit)
    return PullList(repo=repo, state=state, count=len(pulls), pulls=pulls)


def get_pull(repo: str, number: int) -> Pull:
    return _pull(repository(repo).get_pull(number), detail=True)


def comment_pull(repo: str, number: int, body: str) -> Comment:
    c = repository(repo).get_pull(number).create_issue_comment(body)
    return Comment(repo=repo, number=number, id=c.id, body=c.body, url=c.html_url)


def list_runs(repo: str, branch: str | None, status: str | None, limit: int) -> WorkflowRunList:
    kwargs: dict[str, Any] = {}
    if branch:
        kwargs["branch"] = branch
    if status:
        kwargs["status"] = status
    runs = _first((_run(r) for r in repository(repo).get_workflow_runs(**kwargs)), limit)
    failed = sum(r.conclusion in RERUNNABLE for r in runs)
    return WorkflowRunList(repo=repo, count=len(runs), failed=failed, runs=runs)


def rerun_failed(repo: str, run_id: int, max_attempts: int | None) -> Rerun:
    r = repository(repo).get_workflow_run(run_id)
    if r.status != "completed":
        raise ToolError(f"run {run_id} is still {r.status}; only a completed run can be re-run")
    if r.conclusion not in RERUNNABLE:
        raise ToolError(f"run {run_id} concluded {r.conclusion!r}; there are no failed jobs to re-run")
    if max_attempts is not None and (r.run_attempt or 1) > max_attempts:
        raise ToolError(
            f"run {run_id} already had {r.run_attempt} attempts; the team allows {max_attempts} re-run(s) "
            "(context/team/processes.json ci.rerun_failed_jobs_max): open an issue instead"
        )
    requested = r.rerun_failed_jobs()
    if not requested:
        raise ToolError(f"GitHub did not accept the re-run of run {run_id}")
    return Rerun(
        repo=repo,
        run_id=run_id,
        requested=True,
        previous_conclusion=r.conclusion,
        attempt=r.run_attempt,
        url=r.html_url,
    )


def read_file(repo: str, path: str, ref: str | None) -> RepoFile:
    gh_repo = repository(repo)
    found = gh_repo.get_contents(path, ref=ref) if ref else gh_repo.get_contents(path)
    if isinstance(found, list):
        names = sorted(f.name + ("/" if f.type == "dir" else "") for f in found)
        return RepoFile(repo=repo, path=path, ref=ref, kind="dir", entries=names)
    if found.size and found.size > MAX_FILE_BYTES:
        raise ToolError(f"{path} is {found.size} bytes; github_read_file reads files up to {MAX_FILE_BYTES} bytes")
    raw = base64.b64decode(found.content or "") if found.encoding == "base64" else (found.content or "").encode()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ToolError(f"{path} is a binary file ({len(raw)} bytes); github_read_file returns text only") from err
    return RepoFile(repo=repo, path=path, ref=ref, kind="file", sha=found.sha, size=found.size, content=text)
