"""What the devops file checks return: a report per check, and the fields every report shares
(counts per severity, a one-line summary, and who should take over per the team's escalation rules)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agents.devops import compose, secrets_scan, workflow
from agents.devops.findings import SEVERITY_ORDER, Finding, RuleBook, count_by_severity, worst
from agents.devops.handoff import ESCALATION_FILE, Handoff, suggest_handoff
from agents.runtime.layers import Layers


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
    engine: str = Field(description="what checked the file: hadolint and its version, or Reynolds' parser")
    findings: list[Finding]


class WorkflowReport(Report):
    jobs: list[str]
    engine: str = Field(description="what ran beside Reynolds' rules: zizmor and actionlint, or actionlint alone")
    findings: list[workflow.WorkflowFinding]


class SecretScanReport(Report):
    files_scanned: int
    total_findings: int = Field(description="every finding in the scanned files; `findings` holds the most severe")
    engines: list[str] = Field(description="what scanned: Reynolds' patterns, detect-secrets")
    notes: list[str] = Field(default_factory=list, description="why an engine's findings may be missing")
    findings: list[secrets_scan.SecretFinding]
    skipped: list[secrets_scan.Skipped] = Field(description="files not scanned and why (binary, too big, allowlisted)")
    truncated: bool = Field(description="more findings were found than returned (the most severe are kept)")


def context(layers: Layers, relative: str) -> dict[str, Any]:
    """A context file as a dict; absent or unreadable is empty (the team has no rule there)."""
    data = layers.read_structured("context", relative, {}) or {}
    return data if isinstance(data, dict) else {}


def rules(layers: Layers, name: str) -> RuleBook:
    return RuleBook(layers.read_structured("knowledge", name, {}) or {})


def report_fields(layers: Layers, tool: str, path: str, findings: list[Any]) -> dict[str, Any]:
    counts = count_by_severity(findings)
    serious = counts["error"] + counts["critical"]
    if findings:
        parts = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITY_ORDER) if counts[s])
        summary = f"{path}: {len(findings)} finding(s) ({parts})"
    else:
        summary = f"{path}: no findings"
    handoff = suggest_handoff(context(layers, ESCALATION_FILE), tool, worst(findings))
    return {"path": path, "valid": serious == 0, "counts": counts, "summary": summary, "handoff": handoff}
