"""GitHub Actions workflow linting: the checks WF001-WF012 described in knowledge/workflow-rules.yaml,
with action pinning governed by the security policy (which owners may use tags)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from agents.devops import schemas
from agents.devops.findings import Finding, RuleBook
from agents.devops.yamlmap import LineMap

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Event fields an outsider can write (titles, bodies, branch names, commit messages, author names).
UNTRUSTED = re.compile(
    r"\$\{\{[^}]*\b("
    r"github\.head_ref"
    r"|github\.event\.(?:issue|pull_request|discussion)\.(?:title|body)"
    r"|github\.event\.(?:comment|review|review_comment)\.body"
    r"|github\.event\.pull_request\.head\.(?:ref|label|repo\.default_branch)"
    r"|github\.event\.head_commit\.(?:message|author\.(?:name|email))"
    r"|github\.event\.commits\b[^}]*"
    r"|github\.event\.pages\b[^}]*"
    r"|github\.event\.workflow_run\.head_branch"
    r")"
)


class WorkflowFinding(Finding):
    job: str | None = Field(None, description="the job id the finding is about (None: the whole workflow)")


def lint(
    data: Any, lines: LineMap, book: RuleBook, policy: dict[str, Any] | None = None
) -> tuple[list[WorkflowFinding], list[str]]:
    """Findings for a parsed workflow, and its job ids."""
    policy = policy or {}
    out: list[WorkflowFinding] = []

    def add(rule: str, message: str, job: str | None, *path: Any) -> None:
        out.append(book.make(rule, message, lines.line(*path), model=WorkflowFinding, job=job))

    if not isinstance(data, dict):
        add("WF003", "the workflow is not a mapping", None)
        return out, []
    # YAML 1.1 reads a bare `on:` key as the boolean True.
    trigger_key = "on" if "on" in data else True if True in data else None
    if trigger_key is None or not data.get(trigger_key):
        add("WF002", "no `on:` triggers", None, *([] if trigger_key is None else [trigger_key]))
    jobs = data.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        add("WF003", "no `jobs` defined", None, "jobs")
        return out, []
    for job_id, job in jobs.items():
        if not isinstance(job, dict):
            add("WF003", f"job {job_id!r} is not a mapping", str(job_id), "jobs", job_id)
            continue
        _check_job(str(job_id), job, jobs, policy, add)
    for cycle in _cycles(jobs):
        add("WF006", "needs cycle: " + " -> ".join(cycle), cycle[0], "jobs", cycle[0], "needs")
    if policy.get("require_permissions_block", True) and "permissions" not in data:
        bare = [str(j) for j, job in jobs.items() if isinstance(job, dict) and "permissions" not in job]
        if bare:
            message = "no top-level `permissions`, and job(s) " + ", ".join(bare) + " set none"
            add("WF009", message, None, "jobs")
    return out, [str(j) for j in jobs]


def _check_job(job_id: str, job: dict, jobs: dict, policy: dict[str, Any], add) -> None:
    if "uses" in job:  # a reusable-workflow call: no runs-on, no steps
        _check_uses(job["uses"], job_id, policy, add, "jobs", job_id, "uses")
    else:
        if "runs-on" not in job:
            add("WF004", f"job {job_id!r} has no runs-on", job_id, "jobs", job_id)
        if not job.get("steps"):
            add("WF012", f"job {job_id!r} has no steps", job_id, "jobs", job_id)
    needs = job.get("needs") or []
    for need in _names(needs):
        if need not in jobs:
            add("WF005", f"job {job_id!r} needs unknown job {need!r}", job_id, "jobs", job_id, "needs")
    steps = job.get("steps") if isinstance(job.get("steps"), list) else []
    for index, step in enumerate(steps):
        where = ("jobs", job_id, "steps", index)
        if not isinstance(step, dict):
            add("WF011", f"step {index + 1} of job {job_id!r} is not a mapping", job_id, *where)
            continue
        label = f"step {step.get('name') or index + 1!r} of job {job_id!r}"
        if "uses" in step and "run" in step:
            add("WF008", f"{label} has both uses and run", job_id, *where)
        elif "uses" not in step and "run" not in step:
            add("WF011", f"{label} has neither uses nor run", job_id, *where)
        if "uses" in step:
            _check_uses(step["uses"], job_id, policy, add, *where, "uses")
        for key, script in _scripts(step):
            for m in UNTRUSTED.finditer(script):
                add("WF010", f"{label} expands {m.group(1)} inside {key}", job_id, *where, *key.split("."))


INJECTION = "WF010"  # zizmor's template-injection audit covers it, with more sinks, when zizmor reads the file


def combine(own: list[WorkflowFinding], engine: list[WorkflowFinding], engine_parsed: bool) -> list[WorkflowFinding]:
    """Reynolds' rules plus the engines' findings, in line order; WF010 only when zizmor could not read the
    file (its template-injection audit covers more sinks)."""
    kept = [f for f in own if not (engine_parsed and f.rule == INJECTION)]
    return sorted([*kept, *engine], key=lambda f: f.line or 0)


def schema_findings(data: Any, lines: LineMap, book: RuleBook) -> list[WorkflowFinding]:
    """WF014: SchemaStore's workflow schema on the document (YAML 1.1's boolean `on` key read as "on")."""
    if not isinstance(data, dict):
        return []
    document = {("on" if key is True else key): value for key, value in data.items()}
    out = []
    for path, message in schemas.problems(document, schemas.WORKFLOW):
        if not path and message.endswith("is a required property"):
            continue  # a missing `on` or `jobs` is WF002/WF003 already
        where = (True, *path[1:]) if path[:1] == ("on",) and "on" not in data else path
        job = str(path[1]) if len(path) > 1 and path[0] == "jobs" else None
        dotted = ".".join(str(p) for p in path) or "the workflow"
        out.append(book.make("WF014", f"{dotted}: {message}", lines.line(*where), model=WorkflowFinding, job=job))
    return out


def _names(needs: Any) -> list[str]:
    """The job ids a `needs:` value names (a string or a list of strings; anything else names none)."""
    items = [needs] if isinstance(needs, str) else needs if isinstance(needs, list) else []
    return [n for n in items if isinstance(n, str)]


def _scripts(step: dict) -> list[tuple[str, str]]:
    """(where, text) of the code a step runs: `run`, and the script of actions/github-script."""
    found = [("run", step["run"])] if isinstance(step.get("run"), str) else []
    uses, inputs = step.get("uses"), step.get("with")
    if isinstance(uses, str) and uses.startswith("actions/github-script@") and isinstance(inputs, dict):
        if isinstance(inputs.get("script"), str):
            found.append(("with.script", inputs["script"]))
    return found


def _check_uses(uses: Any, job_id: str, policy: dict[str, Any], add, *where: Any) -> None:
    if not isinstance(uses, str) or not uses.strip():
        add("WF013", f"`uses:` is {'empty' if uses in (None, '') else 'not a string'}", job_id, *where)
        return
    _check_pin(uses.strip(), job_id, policy, add, *where)


def _check_pin(uses: str, job_id: str, policy: dict[str, Any], add, *where: Any) -> None:
    if not policy.get("require_sha_pinning", True) or uses.startswith(("./", "docker://")):
        return
    action, _, ref = uses.partition("@")
    if not ref:
        add("WF007", f"{uses!r} has no @ref at all", job_id, *where)
        return
    owner = action.split("/", 1)[0]
    allowed = set(policy.get("tag_pinning_allowed_owners", ["actions", "github"]))
    if not FULL_SHA.match(ref) and owner not in allowed:
        add("WF007", f"{uses!r} is pinned to {ref!r}, not a full commit SHA", job_id, *where)


def _cycles(jobs: dict) -> list[list[str]]:
    """Every distinct cycle in the needs graph, each as [a, b, ..., a] starting at its smallest job id."""
    graph: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        needs = job.get("needs", []) if isinstance(job, dict) else []
        graph[str(job_id)] = [n for n in _names(needs) if n in jobs]
    found: dict[tuple[str, ...], list[str]] = {}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                loop = path[path.index(nxt) :]
                start = loop.index(min(loop))
                loop = loop[start:] + loop[:start]
                found.setdefault(tuple(loop), [*loop, loop[0]])
            elif state.get(nxt) is None:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return list(found.values())
