"""zizmor (PyPI, the GitHub Actions security linter) as lint_workflow's engine for security audits:
template injection (in `run` and in `actions/github-script`), dangerous triggers, credential
persistence, excessive permissions, cache poisoning and more.

It runs through the sandbox (it reads repository content), ``--offline`` (no GitHub API) and
``--no-config`` (a repository's zizmor.yml must not switch audits off). Its `unpinned-uses` audit is
left out: pinning is the team's policy, checked by Reynolds' WF007 with the owners it allows to use tags.
A workflow zizmor refuses (it is not valid under the workflow schema) is reported by Reynolds' rules
alone, and the report says so."""

from __future__ import annotations

import json
from dataclasses import dataclass

from agents.devops.workflow import WorkflowFinding
from agents.runtime.errors import ToolError
from agents.runtime.sandbox import Sandbox, installed

TIMEOUT_S = 60.0
SEVERITY = {"high": "error", "medium": "warning", "low": "info", "informational": "info"}
TEAM_POLICY = {"unpinned-uses"}  # Reynolds' WF007 decides, with the security policy's allowed owners
REFUSED = 3  # zizmor's exit code when it collected no input (the file failed its schema check)


@dataclass
class Result:
    findings: list[WorkflowFinding]
    parsed: bool
    version: str


def find_binary() -> str:
    return installed("zizmor", "pip install zizmor (the devops image installs it)")


def command(binary: str, name: str) -> list[str]:
    return [binary, "--offline", "--no-config", "--no-progress", "--format", "json", f"./{name}"]


async def lint(sandbox: Sandbox, cwd: str, name: str) -> Result:
    """zizmor's findings for the workflow ``name`` in workspace directory ``cwd``."""
    run = await sandbox.run(command(find_binary(), name), cwd=cwd, timeout_s=TIMEOUT_S)
    if run.exit_code == REFUSED and not run.stdout.strip():
        return Result([], parsed=False, version="zizmor")
    if run.truncated:
        raise ToolError("zizmor's report was over the sandbox's output cap")
    try:
        items = json.loads(run.stdout or "[]")
    except json.JSONDecodeError as err:
        raise ToolError(f"zizmor failed (exit {run.exit_code}): {run.stderr.strip()[-300:] or err}") from err
    return Result([_finding(item) for item in items if _kept(item)], parsed=True, version="zizmor")


def _kept(item: object) -> bool:
    return isinstance(item, dict) and item.get("ident") not in TEAM_POLICY and bool(item.get("locations"))


def _finding(item: dict) -> WorkflowFinding:
    primary = item["locations"][0]
    point = primary.get("concrete", {}).get("location", {}).get("start_point", {})
    route = primary.get("symbolic", {}).get("route", {}).get("route", [])
    job = route[1].get("Key") if len(route) > 1 and route[0] == {"Key": "jobs"} else None
    annotation = primary.get("symbolic", {}).get("annotation") or ""
    severity = str(item.get("determinations", {}).get("severity", "")).lower()
    return WorkflowFinding(
        rule=f"zizmor:{item.get('ident')}",
        title=str(item.get("desc", "")),
        severity=SEVERITY.get(severity, "warning"),  # type: ignore[arg-type]
        message=f"{item.get('desc', '')}: {annotation}" if annotation else str(item.get("desc", "")),
        line=point["row"] + 1 if isinstance(point.get("row"), int) else None,
        fix=item.get("url"),
        job=job if isinstance(job, str) else None,
    )
