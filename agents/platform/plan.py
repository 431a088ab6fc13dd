"""Checking a deployment plan (ordered steps: which solution, managed or not, into which environment)
against the estate's environments and ALM policy before anything is imported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from agents.platform.environments import Environment, Estate
from agents.platform.findings import Finding, counts
from agents.platform.solution import SolutionSummary, parse_version
from agents.runtime.errors import ToolError


class PlanStep(BaseModel):
    solution: str = Field(
        min_length=1,
        description="workspace path of the package (.zip or unpacked folder), or a solution UniqueName",
    )
    environment: str = Field(min_length=1, description="environment name (or URL) from list_environments")
    managed: bool = Field(description="import as a managed solution")
    version: str | None = Field(None, description="version to deploy; read from the package when a path is given")


class DeploymentPlan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=200, description="in execution order")


class StepView(BaseModel):
    index: int
    solution: str = Field(description="UniqueName (from the package when a path was given)")
    environment: str
    stage: str | None
    managed: bool
    version: str | None


class PlanReport(BaseModel):
    valid: bool = Field(description="true when there is no error-level finding")
    counts: dict[str, int]
    steps: list[StepView]
    findings: list[Finding]


@dataclass
class _Done:
    index: int
    solution: str
    env: Environment
    version: tuple[int, ...] | None
    version_text: str | None


# Given a step's `solution` field: the package summary if it names a package, None if it is a bare name.
PackageLookup = Callable[[str], SolutionSummary | None]


def check_plan(plan: DeploymentPlan, estate: Estate, lookup: PackageLookup) -> PlanReport:
    findings: list[Finding] = []
    views: list[StepView] = []
    done: list[_Done] = []
    for index, step in enumerate(plan.steps, start=1):
        where = f"step {index}"
        name, version, package = step.solution, step.version, None
        try:
            package = lookup(step.solution)
        except ToolError as err:
            findings.append(Finding(rule="PLN007", severity="error", message=f"{where}: {err}", subject=where))
        if package is not None:
            name = package.unique_name
            if version and version != package.version:
                findings.append(
                    Finding(
                        rule="PLN006",
                        severity="error",
                        message=f"{where}: plan says version {version} but the package is {package.version}",
                        subject=where,
                    )
                )
            version = package.version
            if package.managed != step.managed:
                findings.append(
                    Finding(
                        rule="PLN005",
                        severity="error",
                        message=(
                            f"{where}: plan imports {name} as {'managed' if step.managed else 'unmanaged'} "
                            f"but the package is {package.managed_flag}"
                        ),
                        subject=where,
                    )
                )
        env = estate.find(step.environment)
        views.append(
            StepView(
                index=index,
                solution=name,
                environment=env.name if env else step.environment,
                stage=env.stage if env else None,
                managed=step.managed,
                version=version,
            )
        )
        if env is None:
            known = ", ".join(e.name for e in estate.environments)
            findings.append(
                Finding(
                    rule="PLN001",
                    severity="error",
                    message=f"{where}: unknown environment {step.environment!r} (known: {known})",
                    subject=where,
                )
            )
            continue
        parsed = parse_version(version) if version else None
        if version and parsed is None:
            findings.append(
                Finding(
                    rule="PLN009",
                    severity="error",
                    message=f"{where}: version {version!r} is not numeric major.minor[.build[.revision]]",
                )
            )
        if not step.managed and not env.policy.allow_unmanaged:
            findings.append(
                Finding(
                    rule="PLN002",
                    severity="error",
                    message=f"{where}: {name} goes unmanaged into {env.name} ({env.type}), "
                    "whose policy allows only managed solutions",
                    subject=where,
                )
            )
        findings += _promotion(where, name, env, parsed, version, done)
        findings += _order(where, name, env, parsed, version, done, estate)
        done.append(_Done(index, name, env, parsed, version))
    tally = counts(findings)
    return PlanReport(valid=tally["error"] == 0, counts=tally, steps=views, findings=findings)


def _promotion(
    where: str, name: str, env: Environment, parsed: tuple[int, ...] | None, version: str | None, done: list[_Done]
) -> list[Finding]:
    """The solution must have gone through one of the environments this one promotes from."""
    sources = {s.lower() for s in env.policy.promote_from}
    if not sources:
        return []
    earlier = [d for d in done if d.solution == name and d.env.name.lower() in sources]
    if not earlier:
        return [
            Finding(
                rule="PLN003",
                severity="error",
                message=(
                    f"{where}: {name} reaches {env.name} without passing through "
                    f"{' or '.join(env.policy.promote_from)} earlier in the plan"
                ),
                subject=where,
            )
        ]
    if parsed is not None and all(d.version is not None for d in earlier):
        if not any(d.version == parsed for d in earlier):
            tested = ", ".join(sorted({d.version_text or "?" for d in earlier}))
            return [
                Finding(
                    rule="PLN003",
                    severity="error",
                    message=f"{where}: {name} {version} goes to {env.name} but only {tested} went through "
                    f"{' or '.join(env.policy.promote_from)}",
                    subject=where,
                )
            ]
    return []


def _order(
    where: str,
    name: str,
    env: Environment,
    parsed: tuple[int, ...] | None,
    version: str | None,
    done: list[_Done],
    estate: Estate,
) -> list[Finding]:
    findings = []
    same_env = [d for d in done if d.solution == name and d.env.name == env.name and d.version is not None]
    if parsed is not None and same_env:
        # compare with the highest version already there: that is what the environment will hold
        top = max(same_env, key=lambda d: d.version or ())
        if parsed < (top.version or ()):
            findings.append(
                Finding(
                    rule="PLN004",
                    severity="error",
                    message=f"{where}: {name} {version} into {env.name} after {top.version_text} (step {top.index}): "
                    "a lower version cannot be imported over a higher one",
                    subject=where,
                )
            )
        elif parsed == top.version:
            findings.append(
                Finding(
                    rule="PLN004",
                    severity="warning",
                    message=f"{where}: {name} {version} goes into {env.name} again (already in step {top.index})",
                    subject=where,
                )
            )
    if version is None:
        findings.append(
            Finding(
                rule="PLN010",
                severity="info",
                message=f"{where}: version of {name} unknown (no package path, no version): order not checked",
                subject=where,
            )
        )
    order = [s.lower() for s in estate.promotion_order]
    if env.stage.lower() in order:
        rank = order.index(env.stage.lower())
        later = [d for d in done if d.solution == name and d.env.stage.lower() in order]
        if any(order.index(d.env.stage.lower()) > rank for d in later):
            findings.append(
                Finding(
                    rule="PLN008",
                    severity="warning",
                    message=f"{where}: {name} goes back to stage {env.stage} after a later stage; promotion order is "
                    f"{' -> '.join(estate.promotion_order)}",
                    subject=where,
                )
            )
    return findings
