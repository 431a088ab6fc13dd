"""Rules a solution package must pass before it is deployed: manifest hygiene (version, dependencies,
emptiness), the estate's conventions (publisher prefix, naming) and the target environment's policy
(unmanaged allowed, DLP-blocked connectors). Each rule has a stable id listed in
``knowledge/solution-checklist.md``."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from agents.platform.environments import Environment, Estate
from agents.platform.findings import Finding, counts
from agents.platform.solution import ComponentTypes, SolutionSummary

DEFAULT_PREFIXES = {"new"}  # what a default publisher stamps on everything


class ValidationReport(BaseModel):
    solution: str
    version: str
    path: str
    environment: str | None
    passed: bool = Field(description="true when there is no error-level finding")
    counts: dict[str, int]
    findings: list[Finding]


def validate(
    summary: SolutionSummary, estate: Estate, env: Environment | None, types: ComponentTypes
) -> ValidationReport:
    findings: list[Finding] = []
    findings += _manifest_rules(summary)
    findings += _policy_rules(summary, env)
    prefix = estate.prefix_for(env)
    findings += _publisher_rules(summary, prefix)
    findings += _naming_rules(summary, estate, prefix, types)
    findings += _connector_rules(summary, estate, env)
    tally = counts(findings)
    return ValidationReport(
        solution=summary.unique_name,
        version=summary.version,
        path=summary.path,
        environment=env.name if env else None,
        passed=tally["error"] == 0,
        counts=tally,
        findings=findings,
    )


def _manifest_rules(summary: SolutionSummary) -> list[Finding]:
    findings = []
    if not summary.version_valid:
        findings.append(
            Finding(
                rule="PP001",
                severity="error",
                message=f"version {summary.version!r} is not numeric major.minor[.build[.revision]]",
            )
        )
    for dep in summary.missing_dependencies:
        req = dep.required
        name = req.schema_name or req.display_name or req.id or "?"
        needed_by = (
            f" needed by {dep.dependent.kind} {dep.dependent.schema_name or dep.dependent.id}" if dep.dependent else ""
        )
        source = f" from solution {req.solution}" if req.solution else ""
        findings.append(
            Finding(
                rule="PP002",
                severity="error",
                message=f"missing dependency: {req.kind} {name}{source}{needed_by}; install it in the target first",
                subject=name,
            )
        )
    if not summary.root_components and not summary.components:
        findings.append(
            Finding(rule="PP009", severity="error", message="the solution is empty: no root components, no components")
        )
    return findings


def _policy_rules(summary: SolutionSummary, env: Environment | None) -> list[Finding]:
    if env is None or summary.managed or env.policy.allow_unmanaged:
        return []
    return [
        Finding(
            rule="PP003",
            severity="error",
            message=(
                f"{summary.unique_name} is an unmanaged solution and {env.name} ({env.type}) accepts only managed "
                "solutions; export it as managed from the development environment"
            ),
            subject=env.name,
        )
    ]


def _publisher_rules(summary: SolutionSummary, prefix: str | None) -> list[Finding]:
    actual = summary.publisher.customization_prefix
    findings = []
    if actual and actual.lower() in DEFAULT_PREFIXES:
        findings.append(
            Finding(
                rule="PP005",
                severity="warning",
                message=f"publisher {summary.publisher.unique_name} uses the default prefix {actual!r}; "
                "create a named publisher with its own prefix",
            )
        )
    if prefix and (actual or "").lower() != prefix.lower():
        findings.append(
            Finding(
                rule="PP004",
                severity="error",
                message=f"publisher prefix is {actual!r}, the estate requires {prefix!r}",
                subject=summary.publisher.unique_name,
            )
        )
    return findings


def _prefixed_names(summary: SolutionSummary, types: ComponentTypes) -> list[tuple[str, str]]:
    """(kind, schema name) of every component whose name should carry the prefix, each once."""
    kinds = types.prefixed_kinds()
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    candidates = [(c.kind, c.name) for c in summary.components]
    candidates += [(rc.kind, rc.schema_name) for rc in summary.root_components if rc.schema_name]
    for kind, name in candidates:
        if kind in kinds:
            seen.setdefault((kind, name.lower()), (kind, name))
    return list(seen.values())


def _naming_rules(summary: SolutionSummary, estate: Estate, prefix: str | None, types: ComponentTypes) -> list[Finding]:
    findings = []
    pattern = estate.naming.solution_unique_name
    if pattern and not re.fullmatch(pattern, summary.unique_name):
        findings.append(
            Finding(
                rule="PP008",
                severity="warning",
                message=f"solution name {summary.unique_name!r} does not follow the convention {pattern}",
                subject=summary.unique_name,
            )
        )
    if not prefix:
        return findings
    component_pattern = estate.naming.component_schema_name
    compiled = re.compile(component_pattern.replace("{prefix}", re.escape(prefix))) if component_pattern else None
    for kind, name in _prefixed_names(summary, types):
        if "_" not in name:
            continue  # no prefix at all: a platform component (account, contact) the solution customises
        own = name.split("_", 1)[0]
        if own.lower() != prefix.lower():
            findings.append(
                Finding(
                    rule="PP006",
                    severity="error",
                    message=f"{kind} {name} has prefix {own!r}, not the publisher prefix {prefix!r}",
                    subject=name,
                )
            )
        elif compiled and kind != "web_resource" and not compiled.fullmatch(name):
            # web resource names are paths (cfs_/scripts/form.js), outside the schema-name convention
            findings.append(
                Finding(
                    rule="PP007",
                    severity="warning",
                    message=f"{kind} {name} does not follow the naming convention {component_pattern}",
                    subject=name,
                )
            )
    return findings


def _connector_rules(summary: SolutionSummary, estate: Estate, env: Environment | None) -> list[Finding]:
    findings = []
    target = env.name if env else None
    for component in summary.components:
        if not component.connector:
            continue
        connector = component.connector.rstrip("/").rsplit("/", 1)[-1]
        for policy in estate.dlp_policies:
            if policy.covers(target) and connector in policy.blocked_connectors:
                findings.append(
                    Finding(
                        rule="PP010",
                        severity="error",
                        message=(
                            f"connection reference {component.name} uses connector {connector}, "
                            f"blocked by DLP policy {policy.name!r}"
                        ),
                        subject=component.name,
                    )
                )
    return findings
