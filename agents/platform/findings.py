"""A finding: one rule's verdict on a package or plan, shared by validate_solution and
check_deployment_plan so callers read both the same way."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning", "info"]


class Finding(BaseModel):
    rule: str = Field(description="stable rule id, e.g. PP001; see knowledge/solution-checklist.md")
    severity: Severity
    message: str
    subject: str | None = Field(None, description="the component, dependency or plan step concerned")


def counts(findings: list[Finding]) -> dict[str, int]:
    return {level: sum(f.severity == level for f in findings) for level in ("error", "warning", "info")}
