"""The devops agent's offline file checks: Compose files, Dockerfiles, workflows and secrets.

Each tool reads one workspace file (or tree), runs the check module that owns it, and returns a report
whose findings carry rule ids explained in knowledge/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.devops import (
    actionlint,
    compose,
    detect_secrets_engine,
    dockerfile,
    hadolint,
    interpolate,
    secrets_scan,
    workflow,
    yamlmap,
    zizmor,
)
from agents.devops.inputs import read_workspace_text
from agents.devops.reports import (
    ComposeReport,
    DockerfileReport,
    SecretScanReport,
    WorkflowReport,
    context,
    report_fields,
    rules,
)
from agents.runtime import AgentRuntime
from agents.runtime.annotations import READ
from agents.runtime.layers import Layers

SECURITY_POLICY = "infrastructure/security-policies.json"
RESOURCE_LIMITS = "infrastructure/resource-limits.json"
MONITORING = "infrastructure/monitoring.json"
HADOLINT = "hadolint.yaml"  # knowledge: hadolint's config (never the repository's)
ACTIONLINT = "actionlint.yaml"  # knowledge: actionlint's config (never the repository's)

WorkspacePath = Annotated[str, Field(min_length=1, max_length=1000, description="path relative to the workspace")]


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    register_compose(server, runtime.layers)
    register_dockerfile(server, runtime)
    register_workflow(server, runtime)
    register_secrets(server, runtime)


def register_compose(server: MCPServer, layers: Layers) -> None:
    @server.tool(annotations=READ)
    def validate_compose(path: WorkspacePath = "docker-compose.yaml") -> ComposeReport:
        """Validate a Docker Compose file in the workspace without Docker: `$VAR` interpolation from the .env
        next to it (unset and required variables), the Compose Specification's JSON schema (wrong types,
        unknown keys), YAML errors (with line),
        obsolete `version:`, services without image/build, missing build contexts, undeclared
        volumes/networks/secrets/configs, host port clashes, missing healthchecks, depends_on
        service_healthy on services without one, replicas with container_name, and the team's resource
        and healthcheck policies. Findings have rule id (CP...), severity, service, line and message."""
        resolved, text = read_workspace_text(layers, path)
        book = rules(layers, "compose-rules.yaml")
        parsed = yamlmap.load(text)
        if isinstance(parsed, yamlmap.YamlProblem):
            findings = [book.make("CP001", parsed.message, parsed.line, model=compose.ComposeFinding)]
            return ComposeReport(
                services=[], findings=findings, **report_fields(layers, "validate_compose", path, findings)
            )
        data, lines = parsed
        done = interpolate.interpolate(data, interpolate.read_env_file(resolved.parent))
        limits, monitoring = context(layers, RESOURCE_LIMITS), context(layers, MONITORING)
        findings = compose.spec_findings(done, lines, book)
        findings += compose.validate(done.data, lines, resolved.parent, book, limits, monitoring)
        services = (
            list(data.get("services") or {})
            if isinstance(data, dict) and isinstance(data.get("services"), dict)
            else []
        )
        fields = report_fields(layers, "validate_compose", path, findings)
        return ComposeReport(services=[str(s) for s in services], findings=findings, **fields)


def register_dockerfile(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=READ)
    async def lint_dockerfile(path: WorkspacePath = "Dockerfile") -> DockerfileReport:
        """Lint a Dockerfile in the workspace with hadolint (its DL rules, and ShellCheck's SC rules inside
        RUN) plus the team's policy: running as root, secret-looking ENV/ARG, curl|sh (DF rules). Files
        hadolint cannot parse (heredocs) get Reynolds' own parser and its DF rules for unpinned images,
        apt/apk/pip caches, ADD, cd, sudo, CMD/ENTRYPOINT, MAINTAINER, EXPOSE and unknown instructions.
        Findings carry rule id, severity and line; `engine` says which ran."""
        resolved, text = read_workspace_text(layers, path)
        require_non_root = context(layers, SECURITY_POLICY).get("containers", {}).get("require_non_root_user", True)
        own = dockerfile.lint(text, rules(layers, "dockerfile-rules.yaml"), require_non_root)
        where = resolved.relative_to(layers.workspace.resolve())
        engine = await hadolint.lint(runtime.sandbox, where.parent.as_posix(), where.name, layers.knowledge / HADOLINT)
        findings = dockerfile.combine(own.findings, engine.findings, engine.parsed)
        used = engine.version if engine.parsed else f"Reynolds' parser ({engine.version} cannot parse this file)"
        return DockerfileReport(
            stages=own.stages,
            instructions=own.instructions,
            engine=used,
            findings=findings,
            **report_fields(layers, "lint_dockerfile", path, findings),
        )


def register_workflow(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=READ)
    async def lint_workflow(path: WorkspacePath) -> WorkflowReport:
        """Lint a GitHub Actions workflow file in the workspace (e.g. .github/workflows/ci.yml) with zizmor's
        security audits (template injection in run and github-script, dangerous triggers, credential
        persistence, excessive permissions ...), actionlint's checks (expression and context errors, runner
        labels, actions on retired or deprecated runtimes), SchemaStore's workflow schema (unknown keys,
        wrong types) and the team's rules: YAML errors, missing on/jobs, jobs without runs-on, unknown or cyclic
        needs, empty `uses`, actions not pinned to a full commit SHA (owners allowed to use tags come from
        the security policy), steps with both uses and run, missing permissions. `engine` says what ran."""
        resolved, text = read_workspace_text(layers, path)
        book = rules(layers, "workflow-rules.yaml")
        parsed = yamlmap.load(text)
        if isinstance(parsed, yamlmap.YamlProblem):
            findings = [book.make("WF001", parsed.message, parsed.line, model=workflow.WorkflowFinding)]
            fields = report_fields(layers, "lint_workflow", path, findings)
            return WorkflowReport(jobs=[], engine="Reynolds' YAML reader", findings=findings, **fields)
        data, lines = parsed
        policy = context(layers, SECURITY_POLICY).get("github_actions", {})
        findings, jobs = workflow.lint(data, lines, book, policy)
        findings += workflow.schema_findings(data, lines, book)
        where = resolved.relative_to(layers.workspace.resolve())
        cwd, name = where.parent.as_posix(), where.name
        engine = await zizmor.lint(runtime.sandbox, cwd, name)
        checks = await actionlint.lint(runtime.sandbox, text, where.as_posix(), layers.knowledge / ACTIONLINT)
        findings = workflow.combine(findings, [*engine.findings, *checks], engine.parsed)
        used = "zizmor + actionlint" if engine.parsed else "actionlint (zizmor refused the file: not a valid workflow)"
        fields = report_fields(layers, "lint_workflow", path, findings)
        return WorkflowReport(jobs=jobs, engine=used, findings=findings, **fields)


def register_secrets(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=READ)
    async def scan_secrets(path: WorkspacePath = ".") -> SecretScanReport:
        """Scan a file or directory tree in the workspace for leaked credentials: Reynolds' patterns (AWS
        keys, GitHub/GitLab tokens, Twilio and Stripe keys, private keys, Slack tokens and webhooks, JWTs,
        passwords in code, .env files and URLs, high-entropy strings) plus detect-secrets' detectors for
        other vendors' formats. Reads every file (skips .git, binaries and files over the size cap), then
        returns the most severe findings first up to the cap, with `total_findings` and `counts` for all.
        Placeholders and keys that only point at a secret (password_file) are not findings; allowlisted
        paths are reported at info. Previews are redacted (never the secret itself)."""
        target = layers.workspace_path(path)
        workspace = layers.workspace.resolve()
        policy = secrets_scan.Policy.from_context(context(layers, SECURITY_POLICY).get("secret_scanning"))
        patterns = secrets_scan.load_patterns(layers.read_structured("knowledge", "secret-patterns.yaml", []) or [])
        result = await anyio.to_thread.run_sync(secrets_scan.scan, workspace, target, patterns, policy)
        engine = await detect_secrets_engine.scan(runtime.sandbox, relative_to(target, workspace), policy.skip_dirs)
        await anyio.to_thread.run_sync(
            secrets_scan.add_engine_hits, result, workspace, engine.hits, policy, "detect-secrets"
        )
        fields = report_fields(layers, "scan_secrets", path, result.findings)
        fields["summary"] = secrets_scan.summarize(result, path)
        fields["counts"] = {severity: result.counts[severity] for severity in fields["counts"]}  # all, not shown
        return SecretScanReport(
            files_scanned=result.files_scanned,
            total_findings=result.total_findings,
            engines=result.engines,
            notes=[*result.notes, *([engine.note] if engine.note else [])],
            findings=result.findings,
            skipped=result.skipped,
            truncated=result.truncated,
            **fields,
        )


def relative_to(target: Path, workspace: Path) -> str:
    return target.relative_to(workspace).as_posix() if target != workspace else "."
