"""The devops-polyglot agent's tools: GitHub (PyGithub), offline checks of Compose files, Dockerfiles,
workflows and secrets, git on workspace repositories, and Docker (docker SDK) when a daemon is reachable.

Tool functions stay thin: validate arguments, read the knowledge/context they need, call the module
that owns the work, return a model. Findings carry rule ids whose text lives in knowledge/."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from agents.devops import compose, dockerapi, dockerfile, githubapi, gitrepo, secrets_scan, workflow, yamlmap
from agents.devops.findings import SEVERITY_ORDER, Finding, RuleBook, count_by_severity, worst
from agents.devops.handoff import ESCALATION_FILE, Handoff, suggest_handoff
from agents.devops.inputs import read_workspace_text
from agents.runtime import AgentRuntime
from agents.runtime.errors import ToolError

SECURITY_POLICY = "infrastructure/security-policies.json"
RESOURCE_LIMITS = "infrastructure/resource-limits.json"
MONITORING = "infrastructure/monitoring.json"
PROCESSES = "team/processes.json"
PREFERENCES = "team/preferences.json"

Repo = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="repository as owner/name")]
Number = Annotated[int, Field(ge=1, description="issue or pull request number")]
Limit = Annotated[int, Field(ge=1, le=500, description="at most this many results")]
WorkspacePath = Annotated[str, Field(min_length=1, max_length=1000, description="path relative to the workspace")]


class Report(BaseModel):
    """What a file check found."""

    path: str
    valid: bool = Field(description="no finding of severity error or critical")
    counts: dict[str, int] = Field(description="findings per severity")
    summary: str = Field(description="one line: how many findings, how serious")
    handoff: Handoff | None = Field(description="who should take over, per context/team/escalation.json")


class ComposeReport(Report):
    services: list[str]
    findings: list[compose.ComposeFinding]


class DockerfileReport(Report):
    stages: int
    instructions: int
    findings: list[Finding]


class WorkflowReport(Report):
    jobs: list[str]
    findings: list[workflow.WorkflowFinding]


class SecretScanReport(Report):
    files_scanned: int
    findings: list[secrets_scan.SecretFinding]
    skipped: list[secrets_scan.Skipped] = Field(description="files not scanned and why (binary, too big, allowlisted)")
    truncated: bool = Field(description="the finding list stopped at its cap")


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    def context(relative: str) -> dict[str, Any]:
        return layers.read_structured("context", relative, {}) or {}

    def rules(name: str) -> RuleBook:
        return RuleBook(layers.read_structured("knowledge", name, {}) or {})

    def report_fields(tool: str, path: str, findings: list[Any]) -> dict[str, Any]:
        counts = count_by_severity(findings)
        serious = counts["error"] + counts["critical"]
        if findings:
            parts = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITY_ORDER) if counts[s])
            summary = f"{path}: {len(findings)} finding(s) ({parts})"
        else:
            summary = f"{path}: no findings"
        handoff = suggest_handoff(context(ESCALATION_FILE), tool, worst(findings))
        return {"path": path, "valid": serious == 0, "counts": counts, "summary": summary, "handoff": handoff}

    def signed(body: str) -> str:
        github = context(PREFERENCES).get("github", {})
        if github.get("sign_comments") and github.get("comment_signature"):
            return f"{body}\n\n— {github['comment_signature']}"
        return body

    def repo_dir(repo: str) -> str:
        path = layers.workspace_path(repo)
        if not path.is_dir():
            raise ToolError(f"{repo!r} is not a directory in the workspace")
        return repo

    # --- GitHub ---------------------------------------------------------------------------------------

    @server.tool()
    async def github_create_issue(
        repo: Repo,
        title: Annotated[str, Field(min_length=1, max_length=256)],
        body: Annotated[str, Field(max_length=65536)] = "",
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
    ) -> githubapi.Issue:
        """Open a new GitHub issue in `repo` (owner/name). The team's default labels from
        context/team/preferences.json (github.issue_labels) are added. Returns the created issue
        with its number and web URL. Needs GITHUB_TOKEN_FILE."""
        wanted = [*(labels or []), *context(PREFERENCES).get("github", {}).get("issue_labels", [])]
        merged = list(dict.fromkeys(wanted))
        return await githubapi.run(
            f"repository {repo}", githubapi.create_issue, repo, title, body, merged, assignees or []
        )

    @server.tool()
    async def github_update_issue(
        repo: Repo,
        number: Number,
        title: Annotated[str, Field(min_length=1, max_length=256)] | None = None,
        body: str | None = None,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        state: Literal["open", "closed"] | None = None,
    ) -> githubapi.Issue:
        """Change an existing GitHub issue: title, body, labels (replaces the set), assignees
        (replaces the set) or state (open/closed). Only the fields you pass change."""
        changes = {
            k: v
            for k, v in {"title": title, "body": body, "labels": labels, "assignees": assignees, "state": state}.items()
            if v is not None
        }
        if not changes:
            raise ToolError("nothing to update: pass at least one of title, body, labels, assignees, state")
        return await githubapi.run(f"issue {repo}#{number}", githubapi.update_issue, repo, number, changes)

    @server.tool()
    async def github_comment_issue(
        repo: Repo, number: Number, body: Annotated[str, Field(min_length=1, max_length=65536)]
    ) -> githubapi.Comment:
        """Add a comment to a GitHub issue (signed as the team's preferences ask). Returns the comment's id and URL."""
        return await githubapi.run(f"issue {repo}#{number}", githubapi.comment_issue, repo, number, signed(body))

    @server.tool()
    async def github_close_issue(
        repo: Repo,
        number: Number,
        reason: Literal["completed", "not_planned"] = "completed",
        comment: Annotated[str, Field(max_length=65536)] | None = None,
    ) -> githubapi.Issue:
        """Close a GitHub issue as completed or not_planned, optionally posting `comment` first
        (say why it is closed). Returns the issue in its new state."""
        note = signed(comment) if comment else None
        return await githubapi.run(f"issue {repo}#{number}", githubapi.close_issue, repo, number, reason, note)

    @server.tool()
    async def github_list_issues(
        repo: Repo,
        state: Literal["open", "closed", "all"] = "open",
        labels: list[str] | None = None,
        limit: Limit = 30,
    ) -> githubapi.IssueList:
        """List issues (not pull requests) of a GitHub repository, newest first, filtered by state and
        by labels (an issue must carry all of them)."""
        return await githubapi.run(f"repository {repo}", githubapi.list_issues, repo, state, labels or [], limit)

    @server.tool()
    async def github_list_pulls(
        repo: Repo,
        state: Literal["open", "closed", "all"] = "open",
        base: str | None = None,
        limit: Limit = 30,
    ) -> githubapi.PullList:
        """List pull requests of a GitHub repository (optionally only those targeting branch `base`):
        number, title, state, draft, author, head and base branches."""
        return await githubapi.run(f"repository {repo}", githubapi.list_pulls, repo, state, base, limit)

    @server.tool()
    async def github_get_pull(repo: Repo, number: Number) -> githubapi.Pull:
        """One pull request in detail: body, mergeability, merged flag, lines added/deleted, files changed."""
        return await githubapi.run(f"pull request {repo}#{number}", githubapi.get_pull, repo, number)

    @server.tool()
    async def github_comment_pull(
        repo: Repo, number: Number, body: Annotated[str, Field(min_length=1, max_length=65536)]
    ) -> githubapi.Comment:
        """Add a conversation comment to a pull request (e.g. a review summary or CI diagnosis)."""
        return await githubapi.run(f"pull request {repo}#{number}", githubapi.comment_pull, repo, number, signed(body))

    @server.tool()
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

    @server.tool()
    async def github_rerun_failed_jobs(
        repo: Repo, run_id: Annotated[int, Field(ge=1, description="workflow run id")]
    ) -> githubapi.Rerun:
        """Re-run only the failed jobs of a completed, failed GitHub Actions run. Refuses runs that are
        still going, succeeded, or already used the re-runs the team allows
        (context/team/processes.json ci.rerun_failed_jobs_max)."""
        limit = context(PROCESSES).get("ci", {}).get("rerun_failed_jobs_max")
        return await githubapi.run(f"workflow run {run_id} in {repo}", githubapi.rerun_failed, repo, run_id, limit)

    @server.tool()
    async def github_read_file(
        repo: Repo,
        path: Annotated[str, Field(min_length=1, max_length=1000, description="path inside the repository")],
        ref: Annotated[str | None, Field(description="branch, tag or commit; default branch if omitted")] = None,
    ) -> githubapi.RepoFile:
        """Read a text file (up to 1 MB) from a GitHub repository at a branch, tag or commit; for a
        directory, returns its entry names instead."""
        return await githubapi.run(f"{path} in {repo}", githubapi.read_file, repo, path.strip("/"), ref)

    # --- offline checks -------------------------------------------------------------------------------

    @server.tool()
    def validate_compose(path: WorkspacePath = "docker-compose.yaml") -> ComposeReport:
        """Validate a Docker Compose file in the workspace without Docker: YAML errors (with line),
        obsolete `version:`, services without image/build, missing build contexts, undeclared
        volumes/networks/secrets/configs, host port clashes, missing healthchecks, depends_on
        service_healthy on services without one, replicas with container_name, and the team's resource
        and healthcheck policies. Findings have rule id (CP...), severity, service, line and message."""
        resolved, text = read_workspace_text(layers, path)
        book = rules("compose-rules.yaml")
        parsed = yamlmap.load(text)
        if isinstance(parsed, yamlmap.YamlProblem):
            findings = [book.make("CP001", parsed.message, parsed.line, model=compose.ComposeFinding)]
            return ComposeReport(services=[], findings=findings, **report_fields("validate_compose", path, findings))
        data, lines = parsed
        findings = compose.validate(data, lines, resolved.parent, book, context(RESOURCE_LIMITS), context(MONITORING))
        services = list(data.get("services") or {}) if isinstance(data, dict) else []
        return ComposeReport(
            services=[str(s) for s in services], findings=findings, **report_fields("validate_compose", path, findings)
        )

    @server.tool()
    def lint_dockerfile(path: WorkspacePath = "Dockerfile") -> DockerfileReport:
        """Lint a Dockerfile in the workspace: unpinned base images, apt/apk/pip cache and flags, ADD for
        local files, cd instead of WORKDIR, running as root, sudo, repeated or shell-form CMD/ENTRYPOINT,
        MAINTAINER, secret-looking ENV/ARG, bad EXPOSE ports, unknown instructions, curl|sh. Line
        continuations and heredocs are handled; findings carry rule id (DF...), severity and line."""
        _, text = read_workspace_text(layers, path)
        require_non_root = context(SECURITY_POLICY).get("containers", {}).get("require_non_root_user", True)
        result = dockerfile.lint(text, rules("dockerfile-rules.yaml"), require_non_root)
        findings = sorted(result.findings, key=lambda f: f.line or 0)
        return DockerfileReport(
            stages=result.stages,
            instructions=result.instructions,
            findings=findings,
            **report_fields("lint_dockerfile", path, findings),
        )

    @server.tool()
    def lint_workflow(path: WorkspacePath) -> WorkflowReport:
        """Lint a GitHub Actions workflow file in the workspace (e.g. .github/workflows/ci.yml): YAML
        errors, missing on/jobs, jobs without runs-on, unknown or cyclic needs (the cycle is named),
        actions not pinned to a full commit SHA (owners allowed to use tags come from the security
        policy), steps with both uses and run, untrusted event data in run scripts, missing permissions."""
        _, text = read_workspace_text(layers, path)
        book = rules("workflow-rules.yaml")
        parsed = yamlmap.load(text)
        if isinstance(parsed, yamlmap.YamlProblem):
            findings = [book.make("WF001", parsed.message, parsed.line, model=workflow.WorkflowFinding)]
            return WorkflowReport(jobs=[], findings=findings, **report_fields("lint_workflow", path, findings))
        data, lines = parsed
        policy = context(SECURITY_POLICY).get("github_actions", {})
        findings, jobs = workflow.lint(data, lines, book, policy)
        findings.sort(key=lambda f: f.line or 0)
        return WorkflowReport(jobs=jobs, findings=findings, **report_fields("lint_workflow", path, findings))

    @server.tool()
    def scan_secrets(path: WorkspacePath = ".") -> SecretScanReport:
        """Scan a file or directory tree in the workspace for leaked credentials: AWS keys, GitHub
        tokens, private keys, Slack tokens and webhooks, JWTs, hard-coded passwords, and high-entropy
        strings. Skips .git, binaries, files over the size cap and the security policy's allowlist.
        Findings give file, line, rule, severity and a redacted preview (never the secret itself);
        `summary` is a one-line result for plans and reports."""
        target = layers.workspace_path(path)
        policy = secrets_scan.Policy.from_context(context(SECURITY_POLICY).get("secret_scanning"))
        patterns = secrets_scan.load_patterns(layers.read_structured("knowledge", "secret-patterns.yaml", []) or [])
        result = secrets_scan.scan(layers.workspace.resolve(), target, patterns, policy)
        fields = report_fields("scan_secrets", path, result.findings)
        fields["summary"] = secrets_scan.summarize(result, path)
        return SecretScanReport(
            files_scanned=result.files_scanned,
            findings=result.findings,
            skipped=result.skipped,
            truncated=result.truncated,
            **fields,
        )

    # --- git --------------------------------------------------------------------------------------------

    @server.tool()
    async def git_status(repo: WorkspacePath = ".") -> gitrepo.GitStatus:
        """Status of a git repository in the workspace: branch, HEAD commit, upstream ahead/behind, and
        staged, unstaged, untracked and conflicted files."""
        return await gitrepo.status(runtime.sandbox, repo_dir(repo))

    @server.tool()
    async def git_log(
        repo: WorkspacePath = ".",
        ref: str = "HEAD",
        limit: Limit = 20,
        path: Annotated[str | None, Field(description="only commits touching this path")] = None,
    ) -> gitrepo.GitLog:
        """Recent commits of a git repository in the workspace (newest first): sha, author, ISO date,
        parents and subject; optionally from another ref or only those touching `path`."""
        return await gitrepo.log(runtime.sandbox, repo_dir(repo), ref, limit, path)

    @server.tool()
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
        return await gitrepo.diff(runtime.sandbox, repo_dir(repo), base, target, staged, paths or [], max_patch_chars)

    @server.tool()
    async def git_branches(repo: WorkspacePath = ".") -> gitrepo.GitBranches:
        """Local and remote-tracking branches of a git repository in the workspace, with commit,
        upstream, last commit date, the current branch, and which are protected per the team's
        process (context/team/processes.json)."""
        protected = context(PROCESSES).get("repositories", {}).get("protected_branches", [])
        return await gitrepo.branches(runtime.sandbox, repo_dir(repo), protected)

    @server.tool()
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

    # --- Docker -----------------------------------------------------------------------------------------

    @server.tool()
    async def docker_list_containers(
        project: Annotated[str, Field(min_length=1, description="Compose project name")],
    ) -> dockerapi.ContainerList:
        """Containers of a Docker Compose project (label com.docker.compose.project), running or not,
        with service, image, status, health and restart count; lists the unhealthy ones. Needs the
        Docker socket (DOCKER_HOST or /var/run/docker.sock)."""
        return await dockerapi.run(f"project {project}", dockerapi.list_containers, project)

    @server.tool()
    async def docker_logs(
        container: Annotated[str, Field(min_length=1, description="container name or id")],
        tail: Annotated[int | None, Field(ge=1, le=100_000)] = None,
    ) -> dockerapi.Logs:
        """The last `tail` log lines (with timestamps) of a container; the default and the cap come
        from context/infrastructure/monitoring.json (logs.default_tail, logs.max_tail)."""
        logs_policy = context(MONITORING).get("logs", {})
        lines = min(tail or int(logs_policy.get("default_tail", 200)), int(logs_policy.get("max_tail", 5000)))
        return await dockerapi.run(f"container {container}", dockerapi.logs, container, lines)

    @server.tool()
    async def docker_health(
        container: Annotated[str, Field(min_length=1, description="container name or id")],
    ) -> dockerapi.Health:
        """Health of one container: status, healthcheck state, failing streak, restart count and the
        last healthcheck outputs."""
        return await dockerapi.run(f"container {container}", dockerapi.health, container)

    @server.tool()
    async def docker_restart(
        container: Annotated[str, Field(min_length=1, description="container name or id")],
        timeout_s: Annotated[int, Field(ge=0, le=300, description="seconds to wait for a clean stop")] = 10,
    ) -> dockerapi.Restarted:
        """Restart one container (stop with timeout, then start) and report its status before and after."""
        return await dockerapi.run(f"container {container}", dockerapi.restart, container, timeout_s)
