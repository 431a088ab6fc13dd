"""What a check reports: the severity scale, the ``Finding`` record, and the rule book (titles,
severities, fixes) loaded from the agent's knowledge files so the checks and their docs stay one list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def at_least(severity: str, floor: str) -> bool:
    """True when ``severity`` is as serious as ``floor`` or more."""
    return SEVERITY_ORDER.get(severity, 0) >= SEVERITY_ORDER.get(floor, 0)


class Finding(BaseModel):
    """One problem found in a file."""

    rule: str = Field(description="rule id, e.g. DF001; its text is in the agent's knowledge files")
    title: str
    severity: Severity
    message: str = Field(description="what is wrong here, specifically")
    line: int | None = Field(None, description="1-based line in the file, when known")
    fix: str | None = None


@dataclass(frozen=True)
class RuleBook:
    """Rule metadata by id (from knowledge/<name>-rules.yaml); ``make`` turns a rule id into a Finding."""

    rules: dict[str, dict[str, Any]]

    def make(
        self,
        rule: str,
        message: str,
        line: int | None = None,
        *,
        model: type[Finding] = Finding,
        severity: str | None = None,
        **extra: Any,
    ) -> Any:
        meta = self.rules.get(rule, {})
        return model(
            rule=rule,
            title=meta.get("title", rule),
            severity=severity or meta.get("severity", "warning"),
            message=message,
            line=line,
            fix=meta.get("fix"),
            **extra,
        )


def worst(findings: list[Finding]) -> str | None:
    """The highest severity among ``findings`` (None when there are none)."""
    if not findings:
        return None
    return max((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__)


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    counts = {name: 0 for name in SEVERITY_ORDER}
    for f in findings:
        counts[f.severity] += 1
    return counts
