"""Handoff suggestions: which team should take over, read from ``context/team/escalation.json``.

A tool that finds something serious does not page anyone itself; it returns a ``Handoff`` so the
orchestrator (or the person reading the result) knows whom the team's rules name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agents.devops.findings import SEVERITY_ORDER, at_least

ESCALATION_FILE = "team/escalation.json"


class Handoff(BaseModel):
    """Who should take this over, per the team's escalation rules."""

    rule: str
    escalate_to: str
    contact: str | None = None
    respond_within: str | None = None
    reason: str


def suggest_handoff(escalation: dict[str, Any] | None, tool: str, severity: str | None) -> Handoff | None:
    """The first escalation rule for ``tool`` whose ``min_severity`` the worst finding reaches."""
    if not escalation or severity not in SEVERITY_ORDER:
        return None
    for rule in escalation.get("rules", []):
        if tool in rule.get("tools", []) and at_least(severity, rule.get("min_severity", "critical")):
            return Handoff(
                rule=rule.get("id", "unnamed"),
                escalate_to=rule["escalate_to"],
                contact=rule.get("contact"),
                respond_within=rule.get("respond_within"),
                reason=rule.get("reason", ""),
            )
    return None
