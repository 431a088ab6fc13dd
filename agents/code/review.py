"""A code review: the local findings (analysis + ruff) sorted into blocking issues and warnings by the
team's standards, and, when the LLM is configured, its reading of the code against the review
checklist from this agent's knowledge."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents.code import llm
from agents.code.python_analysis import PythonAnalysis
from agents.code.ruff_runner import LintReport
from agents.code.standards import PythonStandards

MAX_REVIEW_SOURCE_CHARS = 60_000
MAX_ISSUES = 200

Verdict = Literal["approve", "approve_with_comments", "changes_requested"]


class ReviewIssue(BaseModel):
    severity: Literal["blocking", "warning"]
    kind: str = Field(description="syntax_error | lint | complexity | missing_docstring | todo | long_function")
    file: str
    line: int
    message: str


class CodeReview(BaseModel):
    path: str
    verdict: Verdict = Field(description="from the local findings: blocking issues request changes")
    blocking: list[ReviewIssue]
    warnings: list[ReviewIssue]
    llm_review: str | None = Field(None, description="the model's review, when the LLM was used")
    llm_model: str | None = None
    llm_note: str | None = Field(None, description="why the LLM was not used, when it was not")
    summary: str


def local_issues(
    analysis: PythonAnalysis, lint: LintReport, standards: PythonStandards
) -> tuple[list[ReviewIssue], list[ReviewIssue]]:
    """(blocking, warnings): syntax errors, lint findings and over-complex functions block; missing
    docstrings, TODO comments and functions longer than the standard are warnings."""
    blocking = [
        ReviewIssue(severity="blocking", kind="syntax_error", **e.model_dump(exclude={"col"}))
        for e in analysis.syntax_errors
    ]
    blocking += [
        ReviewIssue(severity="blocking", kind="lint", file=f.file, line=f.line, message=f"{f.code} {f.message}")
        for f in lint.findings
        # invalid-syntax: reported above from the parser. C901: ruff's mccabe count would be a second,
        # disagreeing complexity figure; the review reports one, analyze_python's (complexity-guidelines.md).
        if f.code not in ("invalid-syntax", "C901")
    ]
    blocking += [
        ReviewIssue(
            severity="blocking",
            kind="complexity",
            file=c.file,
            line=c.line,
            message=f"{c.qualname} has complexity {c.complexity} (limit {standards.max_complexity})",
        )
        for c in analysis.complex_functions
    ]
    warnings: list[ReviewIssue] = []
    for module in analysis.modules:
        warnings += [
            ReviewIssue(
                severity="warning",
                kind="missing_docstring",
                file=g.file,
                line=g.line,
                message=f"{g.kind.replace('_', ' ')} {g.name} has no docstring",
            )
            for g in module.missing_docstrings
        ]
        warnings += [
            ReviewIssue(severity="warning", kind="todo", file=module.file, line=t.line, message=f"{t.tag}: {t.text}")
            for t in module.todos
        ]
        for f in module.functions:
            length = f.end_line - f.line + 1
            if length > standards.max_function_lines:
                warnings.append(
                    ReviewIssue(
                        severity="warning",
                        kind="long_function",
                        file=module.file,
                        line=f.line,
                        message=f"{f.qualname} is {length} lines (limit {standards.max_function_lines})",
                    )
                )
    return blocking[:MAX_ISSUES], warnings[:MAX_ISSUES]


def verdict(blocking: list[ReviewIssue], warnings: list[ReviewIssue]) -> Verdict:
    if blocking:
        return "changes_requested"
    return "approve_with_comments" if warnings else "approve"


def _issue_lines(issues: list[ReviewIssue]) -> str:
    return "\n".join(f"- [{i.severity}] {i.file}:{i.line} {i.kind}: {i.message}" for i in issues[:60]) or "- none"


async def llm_review(
    sources: list[tuple[str, str]], checklist: str, issues: list[ReviewIssue], standards: PythonStandards
) -> llm.Completion:
    """Ask the model to review ``sources`` (path, text) against the checklist, given the local findings."""
    budget = MAX_REVIEW_SOURCE_CHARS
    shown: list[str] = []
    for path, text in sources:
        if budget <= 0:
            shown.append(f"(further files left out: review budget of {MAX_REVIEW_SOURCE_CHARS} characters used)")
            break
        shown.append(f"File {path}:\n```python\n{text[:budget].rstrip()}\n```")
        budget -= len(text)
    system = (
        "You are a careful senior reviewer of Python code. Team standards: line length "
        f"{standards.line_length}, complexity at most {standards.max_complexity}, docstrings on "
        f"{', '.join(standards.required_docstrings) or 'nothing'}. Review against this checklist:\n{checklist}\n"
        "Answer in Markdown: a one-line verdict, then findings as bullets with file:line, most serious first. "
        "Do not repeat the automated findings unless you add something to them."
    )
    user = "Automated findings:\n" + _issue_lines(issues) + "\n\nCode under review:\n\n" + "\n\n".join(shown)
    return await llm.complete(system, user, temperature=0.1)
