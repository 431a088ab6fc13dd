"""The code agent's quality tools that run programs in the sandbox: ruff (lint, format), pytest, and the
review that combines the local checks with an optional LLM review."""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.code import llm, pytest_runner, review, ruff_runner
from agents.code.pytest_runner import PytestReport
from agents.code.python_analysis import PythonAnalysis, analyse_tree
from agents.code.review import CodeReview
from agents.code.ruff_runner import FormatReport, LintReport
from agents.code.sources import python_target, read_source, relative, workspace_target
from agents.code.standards import load_standards
from agents.runtime import AgentRuntime
from agents.runtime.annotations import CHANGE_LOCAL, EXECUTE, READ_REMOTE
from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

REVIEW_CHECKLIST = "review-checklist.md"

WorkspacePath = Annotated[
    str, Field(min_length=1, max_length=1000, description="file or directory, relative to the agent's workspace")
]


def review_inputs(layers: Layers, analysis: PythonAnalysis) -> tuple[list[tuple[str, str]], str]:
    """(path, text) of the reviewed modules and the review checklist from knowledge."""
    checklist_file = layers.knowledge / REVIEW_CHECKLIST
    checklist = checklist_file.read_text() if checklist_file.is_file() else ""
    return [(m.file, read_source(layers.workspace / m.file, m.file)) for m in analysis.modules], checklist


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    register_ruff(server, runtime)
    register_pytest(server, runtime)
    register_review(server, runtime)


def register_ruff(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=CHANGE_LOCAL)
    async def lint_python(
        path: WorkspacePath,
        fix: Annotated[bool, Field(description="apply ruff's safe fixes to the files first")] = False,
    ) -> LintReport:
        """Lint Python code in the workspace with ruff using the team standards (line length, selected
        and ignored rules, max complexity from context team/standards.json). Returns each finding
        (code, message, file, line, col, fixable), counts per rule and a one-line `summary`."""
        standards = load_standards(runtime).python
        _, _, shown = python_target(layers, path)
        return await ruff_runner.lint(runtime.sandbox, shown, standards, fix)

    @server.tool(annotations=CHANGE_LOCAL)
    async def format_python(
        path: WorkspacePath,
        check_only: Annotated[bool, Field(description="true: only report; false: rewrite the files")] = True,
        show_diff: Annotated[bool, Field(description="with check_only, include the unified diff")] = False,
    ) -> FormatReport:
        """Format Python code in the workspace with `ruff format` (team line length and target version).
        check_only=true lists the files that would change (optionally with a diff); check_only=false
        rewrites them and lists the files changed. Files with syntax errors are reported, not touched."""
        standards = load_standards(runtime).python
        _, _, shown = python_target(layers, path)
        return await ruff_runner.format_code(runtime.sandbox, shown, standards, check_only, show_diff)


def register_pytest(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=EXECUTE)
    async def run_pytest(
        path: WorkspacePath,
        args: Annotated[
            list[str] | None, Field(description="extra pytest arguments, e.g. ['-k', 'parser', '-x']")
        ] = None,
        timeout_s: Annotated[
            float | None, Field(gt=0, le=3600, description="kill pytest after this long; default from standards")
        ] = None,
    ) -> PytestReport:
        """Run pytest on a test directory or file in the workspace (python -m pytest, sandboxed, with a
        timeout) and return passed/failed/error/skipped counts and each test with its failure message.
        A tree with no tests gives no_tests_collected=true; a run past the timeout is an error."""
        tests = load_standards(runtime).tests
        limit = timeout_s or tests.default_timeout_s
        if limit > tests.max_timeout_s:
            raise ToolError(f"timeout_s {limit:g} is over the team's max_timeout_s of {tests.max_timeout_s:g}")
        target = workspace_target(layers, path)
        extra = list(tests.default_args if args is None else args)
        return await pytest_runner.run_pytest(runtime.sandbox, target, relative(layers, target), extra, limit)


def register_review(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=READ_REMOTE)
    async def review_code(
        path: WorkspacePath,
        use_llm: Annotated[
            bool | None,
            Field(description="null: use the LLM when configured; true: require it; false: local checks only"),
        ] = None,
    ) -> CodeReview:
        """Review Python code in the workspace: local checks (syntax, ruff with the team rules, complexity
        over the limit, missing docstrings, TODOs, long functions) give blocking issues, warnings and a
        verdict; when the LLM is configured it also reviews the code against the team checklist."""
        standards = load_standards(runtime).python
        target, files, shown = python_target(layers, path)
        analysis = await anyio.to_thread.run_sync(analyse_tree, files, target, layers.workspace, standards)
        lint = await ruff_runner.lint(runtime.sandbox, shown, standards, fix=False)
        blocking, warnings = review.local_issues(analysis, lint, standards)
        result = CodeReview(
            path=shown,
            verdict=review.verdict(blocking, warnings),
            blocking=blocking,
            warnings=warnings,
            summary=f"{review.verdict(blocking, warnings)}: {len(blocking)} blocking, {len(warnings)} warning(s)",
        )
        if use_llm is False:
            result.llm_note = "LLM not requested (use_llm=false)"
            return result
        if use_llm is None and not llm.is_configured():
            result.llm_note = llm.NOT_CONFIGURED + "; local checks only"
            return result
        sources, checklist = await anyio.to_thread.run_sync(review_inputs, layers, analysis)
        try:
            reply = await review.llm_review(sources, checklist, blocking + warnings, standards)
        except ToolError as err:
            if use_llm:
                raise
            # asked for "LLM if available": the local review stands, and says why the model's part is missing
            result.llm_note = f"LLM review failed: {err}"
            result.summary += "; LLM review failed"
            return result
        result.llm_review, result.llm_model = reply.text.strip(), reply.model
        result.summary += f"; LLM review by {reply.model or 'the model'} attached"
        return result
