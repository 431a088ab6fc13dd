"""Running ruff (lint and format) in the sandbox with the team's standards, and reading its JSON
output into findings. ruff runs ``--isolated``: the team standards in context decide the rules, not a
config file that happens to sit in the checked-out tree."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from agents.code.standards import PythonStandards
from agents.runtime.errors import CommandFailed, ToolError
from agents.runtime.sandbox import CommandResult, Sandbox

RUFF_TIMEOUT_S = 120.0
MAX_DIFF_CHARS = 50_000


class LintFinding(BaseModel):
    code: str = Field(description="rule code, e.g. F401; 'invalid-syntax' for a file ruff cannot parse")
    message: str
    file: str = Field(description="path relative to the workspace")
    line: int
    col: int
    end_line: int
    end_col: int
    fixable: bool = Field(description="ruff can fix it automatically (`lint_python` with fix=true)")
    fix_applicability: str | None = Field(None, description="safe | unsafe | display-only, when a fix exists")
    url: str | None = None


class LintReport(BaseModel):
    path: str
    total_findings: int
    truncated: bool = Field(description="ruff printed more than the sandbox's output cap: `findings` lists the first")
    findings: list[LintFinding]
    counts_by_code: dict[str, int]
    fixable: int
    fixed_applied: bool = Field(description="ruff was asked to apply safe fixes (fix=true)")
    settings: dict[str, object] = Field(description="the standards ruff ran with")
    summary: str


class FormatReport(BaseModel):
    path: str
    check_only: bool
    files: list[str] = Field(description="files that would change (check_only) or that were rewritten")
    errors: list[LintFinding] = Field(description="files ruff could not format, e.g. syntax errors")
    diff: str | None = Field(None, description="unified diff of the changes, when asked for with check_only")
    summary: str


def ruff_executable() -> str:
    """ruff from this interpreter's environment (it is a dependency of the agent), else from PATH."""
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ruff")
    if not found:
        raise CommandFailed("ruff is not installed next to the agent's Python or on PATH")
    return found


def _settings_args(standards: PythonStandards) -> list[str]:
    return [
        "--isolated",
        "--no-cache",
        "--line-length",
        str(standards.line_length),
        "--target-version",
        standards.target_version,
    ]


def _lint_args(standards: PythonStandards) -> list[str]:
    args = _settings_args(standards)
    if standards.ruff.select:
        args += ["--select", ",".join(standards.ruff.select)]
    if standards.ruff.ignore:
        args += ["--ignore", ",".join(standards.ruff.ignore)]
    # the complexity limit for C901 is the same one analyze_python flags against
    return [*args, "--config", f"lint.mccabe.max-complexity = {standards.max_complexity}"]


def _relative(filename: str, workspace: Path) -> str:
    path = Path(filename)
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return filename


def _items(result: CommandResult) -> list[dict]:
    """ruff's records: a JSON array, or JSON lines (one per finding). Output cut at the sandbox's cap
    keeps every complete line; only a cut JSON array is an error."""
    text = result.stdout.strip()
    if result.exit_code not in (0, 1) and not text.startswith(("[", "{")):
        raise CommandFailed(f"ruff failed (exit {result.exit_code}): {result.stderr.strip()[:2000]}")
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ToolError(f"ruff printed output that is not JSON: {text[:500]!r}") from err
    lines = text.splitlines()
    if result.truncated and lines:
        lines.pop()  # the line the cap cut through
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as err:
        raise ToolError(f"ruff printed a line that is not JSON: {err}") from err


def _parse_findings(result: CommandResult, workspace: Path) -> list[LintFinding]:
    findings = []
    for item in _items(result):
        fix = item.get("fix") or None
        location, end = item.get("location") or {}, item.get("end_location") or {}
        findings.append(
            LintFinding(
                code=item.get("code") or item.get("name") or "unknown",
                message=item.get("message") or "",
                file=_relative(item.get("filename", ""), workspace),
                line=location.get("row", 0),
                col=location.get("column", 0),
                end_line=end.get("row", 0),
                end_col=end.get("column", 0),
                fixable=fix is not None,
                fix_applicability=fix.get("applicability") if fix else None,
                url=item.get("url"),
            )
        )
    return findings


async def lint(sandbox: Sandbox, target: str, standards: PythonStandards, fix: bool) -> LintReport:
    """``ruff check`` on ``target`` (workspace-relative); with ``fix`` safe fixes are written first."""
    base = [ruff_executable(), "check", *_lint_args(standards)]
    argv = [*base, "--output-format", "json-lines", *(["--fix"] if fix else [])]
    result = await sandbox.run([*argv, "--", target], timeout_s=RUFF_TIMEOUT_S)
    findings = _parse_findings(result, sandbox.root_for_call())
    counts = Counter(f.code for f in findings)
    fixable = sum(f.fixable for f in findings)
    total = len(findings)
    if result.truncated:  # more than the sandbox's output cap: count them all from ruff's statistics
        counts, fixable = await _statistics(sandbox, base, target)
        total = sum(counts.values())
    if findings:
        top = ", ".join(f"{code}x{n}" for code, n in counts.most_common(8))
        files = len({f.file for f in findings})
        shown, where = (
            (f" ({len(findings)} listed: the output cap was reached)", f"{files}+") if result.truncated else ("", files)
        )
        summary = f"{total} finding(s){shown} in {where} file(s) under {target}: {top}; {fixable} fixable"
    else:
        summary = f"ruff: no findings in {target}"
    return LintReport(
        path=target,
        total_findings=total,
        truncated=result.truncated,
        findings=findings,
        counts_by_code=dict(counts.most_common()),
        fixable=fixable,
        fixed_applied=fix,
        settings={
            "line_length": standards.line_length,
            "target_version": standards.target_version,
            "select": standards.ruff.select,
            "ignore": standards.ruff.ignore,
            "max_complexity": standards.max_complexity,
        },
        summary=summary,
    )


async def _statistics(sandbox: Sandbox, base: list[str], target: str) -> tuple[Counter[str], int]:
    """Findings per rule code and how many are fixable, from ``ruff check --statistics`` (small output)."""
    result = await sandbox.run(
        [*base, "--statistics", "--output-format", "json", "--", target], timeout_s=RUFF_TIMEOUT_S
    )
    rows = _items(result)
    counts = Counter({str(r.get("code") or r.get("name")): int(r.get("count", 0)) for r in rows})
    return counts, sum(int(r.get("fixable_count", 0)) for r in rows)


async def format_code(
    sandbox: Sandbox, target: str, standards: PythonStandards, check_only: bool, with_diff: bool
) -> FormatReport:
    """``ruff format`` on ``target``: always a check first (which files would change), then the rewrite
    unless ``check_only``."""
    base = [ruff_executable(), "format", *_settings_args(standards)]
    check = await sandbox.run([*base, "--check", "--output-format", "json", "--", target], timeout_s=RUFF_TIMEOUT_S)
    entries = _parse_findings(check, sandbox.root_for_call())
    errors = [e for e in entries if e.code != "unformatted"]
    files = sorted({e.file for e in entries if e.code == "unformatted"})
    diff = None
    if check_only and with_diff and files:
        shown = await sandbox.run([*base, "--diff", "--", target], timeout_s=RUFF_TIMEOUT_S)
        diff = shown.stdout[:MAX_DIFF_CHARS]
    if not check_only and files:
        written = await sandbox.run([*base, "--", *files], timeout_s=RUFF_TIMEOUT_S)
        if written.exit_code != 0:
            raise CommandFailed(f"ruff format failed (exit {written.exit_code}): {written.stderr.strip()[:2000]}")
    verb = "would reformat" if check_only else "reformatted"
    summary = f"{verb} {len(files)} file(s) under {target}" if files else f"{target} is already formatted"
    if errors:
        summary += f"; {len(errors)} file(s) could not be formatted: " + "; ".join(
            f"{e.file}:{e.line}:{e.col}: {e.message}" for e in errors[:5]
        )
    return FormatReport(path=target, check_only=check_only, files=files, errors=errors, diff=diff, summary=summary)
