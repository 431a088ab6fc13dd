"""The code-intelligence agent's tools (pool ``code``). Each tool is thin: it resolves paths inside the
workspace, reads the team standards from context, and hands the work to one module of this package.
Local tools (analysis, line counts, ruff, pytest, API docs) always work; generation, refactoring and
the model's part of a review need an OpenAI-compatible LLM (OPENAI_API_KEY_FILE)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.code import generation, llm, pytest_runner, review, ruff_runner
from agents.code.api_docs import ApiDocs, package_docs
from agents.code.generation import GeneratedCode, Refactoring
from agents.code.line_count import LANGUAGES_FILE, LineCounts, count_tree, load_languages
from agents.code.pytest_runner import PytestReport
from agents.code.python_analysis import PythonAnalysis, analyse_tree
from agents.code.review import CodeReview
from agents.code.ruff_runner import FormatReport, LintReport
from agents.code.sources import python_files, read_source, relative, workspace_target
from agents.code.standards import load_standards
from agents.runtime import AgentRuntime
from agents.runtime.errors import ToolError

REVIEW_CHECKLIST = "review-checklist.md"
MAX_CONTEXT_FILES = 10

WorkspacePath = Annotated[
    str, Field(min_length=1, max_length=1000, description="file or directory, relative to the agent's workspace")
]


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    def python_target(path: str) -> tuple[Path, list[Path], str]:
        """(resolved path, its Python files, the name to show) — a single file is checked for size and
        binary content up front so the caller gets that error rather than a parser's."""
        target = workspace_target(layers, path)
        files = python_files(target)
        shown = relative(layers, target)
        if target.is_file():
            read_source(target, shown)
        return target, files, shown

    def write_output(output_path: str, text: str, overwrite: bool = True) -> str:
        out = layers.workspace_path(output_path, must_exist=False)
        if out.is_dir():
            raise ToolError(f"output_path {output_path!r} is a directory; name a file")
        if out.exists() and not overwrite:
            raise ToolError(f"{output_path!r} already exists; pass overwrite=true to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return relative(layers, out)

    def review_inputs(analysis: PythonAnalysis) -> tuple[list[tuple[str, str]], str]:
        """(path, text) of the reviewed modules and the review checklist from knowledge."""
        checklist_file = layers.knowledge / REVIEW_CHECKLIST
        checklist = checklist_file.read_text() if checklist_file.is_file() else ""
        return [(m.file, read_source(layers.workspace / m.file, m.file)) for m in analysis.modules], checklist

    @server.tool()
    def analyze_python(path: WorkspacePath) -> PythonAnalysis:
        """Static analysis of a Python file or package in the workspace (stdlib ast; nothing is run):
        functions and classes (name, line, args, docstring present), cyclomatic complexity per
        function with those over the team's max_complexity flagged, imports and the import graph
        between the package's modules, TODO/FIXME/XXX comments with lines, the public API (__all__
        when declared), missing docstrings per the standards, and syntax errors as file:line:col."""
        standards = load_standards(runtime).python
        target, files, _ = python_target(path)
        return analyse_tree(files, target, layers.workspace, standards)

    @server.tool()
    def count_lines(path: WorkspacePath) -> LineCounts:
        """Count code, comment and blank lines per language (by file extension: Python, JS/TS, Go, Rust,
        C/C++, Java, C#, shell, YAML, Markdown and more) for a file or directory tree in the workspace.
        Skips .git, node_modules, virtualenvs, caches and binary files."""
        table = load_languages(layers.read_structured("knowledge", LANGUAGES_FILE))
        target = workspace_target(layers, path)
        return count_tree(target, relative(layers, target), table)

    @server.tool()
    async def lint_python(
        path: WorkspacePath,
        fix: Annotated[bool, Field(description="apply ruff's safe fixes to the files first")] = False,
    ) -> LintReport:
        """Lint Python code in the workspace with ruff using the team standards (line length, selected
        and ignored rules, max complexity from context team/standards.json). Returns each finding
        (code, message, file, line, col, fixable), counts per rule and a one-line `summary`."""
        standards = load_standards(runtime).python
        _, _, shown = python_target(path)
        return await ruff_runner.lint(runtime.sandbox, shown, standards, fix)

    @server.tool()
    async def format_python(
        path: WorkspacePath,
        check_only: Annotated[bool, Field(description="true: only report; false: rewrite the files")] = True,
        show_diff: Annotated[bool, Field(description="with check_only, include the unified diff")] = False,
    ) -> FormatReport:
        """Format Python code in the workspace with `ruff format` (team line length and target version).
        check_only=true lists the files that would change (optionally with a diff); check_only=false
        rewrites them and lists the files changed. Files with syntax errors are reported, not touched."""
        standards = load_standards(runtime).python
        _, _, shown = python_target(path)
        return await ruff_runner.format_code(runtime.sandbox, shown, standards, check_only, show_diff)

    @server.tool()
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

    @server.tool()
    def generate_api_docs(
        path: WorkspacePath,
        output_path: Annotated[
            str | None, Field(description="also write the Markdown to this workspace file, e.g. docs/api.md")
        ] = None,
    ) -> ApiDocs:
        """Markdown API reference for a Python package or module in the workspace, from its source:
        module docstrings, then public classes (with public methods) and functions with their
        signatures and docstrings; __all__ decides what is public when present; tests are left out."""
        target, files, shown = python_target(path)
        docs = package_docs(files, target, layers.workspace, shown if target.is_file() else target.name)
        if output_path:
            docs.written_to = write_output(output_path, docs.markdown)
        return docs

    @server.tool()
    async def generate_code(
        instruction: Annotated[str, Field(min_length=3, max_length=20_000, description="what the code must do")],
        language: Annotated[str, Field(min_length=1, max_length=40)] = "python",
        context_paths: Annotated[
            list[str] | None, Field(description="workspace files the new code builds on (sent to the model)")
        ] = None,
        output_path: Annotated[str | None, Field(description="write the code to this workspace file")] = None,
        overwrite: bool = False,
    ) -> GeneratedCode:
        """Write new code with the configured LLM (OpenAI-compatible API) following the team standards;
        Python output is syntax-checked. Optionally writes it into the workspace. Needs
        OPENAI_API_KEY_FILE; without it this tool fails with 'LLM not configured'."""
        llm.load_settings()  # fail before reading files when the model is not configured
        standards = load_standards(runtime).python
        paths = context_paths or []
        if len(paths) > MAX_CONTEXT_FILES:
            raise ToolError(f"at most {MAX_CONTEXT_FILES} context_paths; got {len(paths)}")
        context = []
        for p in paths:
            file = workspace_target(layers, p)
            if not file.is_file():
                raise ToolError(f"context path {p!r} is not a file")
            context.append((relative(layers, file), read_source(file, p)))
        if sum(len(text) for _, text in context) > generation.MAX_PROMPT_SOURCE_CHARS:
            raise ToolError(f"context files exceed {generation.MAX_PROMPT_SOURCE_CHARS} characters; send fewer")
        result = await generation.generate(instruction, language, context, standards)
        if output_path:
            result.written_to = await anyio.to_thread.run_sync(write_output, output_path, result.code, overwrite)
        return result

    @server.tool()
    async def refactor_code(
        path: Annotated[str, Field(min_length=1, max_length=1000, description="one file in the workspace")],
        instruction: Annotated[str, Field(min_length=3, max_length=20_000, description="what to change")],
        apply: Annotated[bool, Field(description="write the proposal over the file (Python must parse)")] = False,
    ) -> Refactoring:
        """Propose a rewrite of one workspace file with the configured LLM: returns the new content and a
        unified diff; writes the file only with apply=true, and never writes Python that does not
        parse. Needs OPENAI_API_KEY_FILE; without it this tool fails with 'LLM not configured'."""
        llm.load_settings()
        standards = load_standards(runtime).python
        target = workspace_target(layers, path)
        if not target.is_file():
            raise ToolError(f"{path!r} is not a file; refactor_code works on one file")
        shown = relative(layers, target)
        current = read_source(target, shown)
        if len(current) > generation.MAX_PROMPT_SOURCE_CHARS:
            raise ToolError(
                f"{shown} has {len(current)} characters; the limit for one request is "
                f"{generation.MAX_PROMPT_SOURCE_CHARS}"
            )
        result = await generation.refactor(shown, current, instruction, standards)
        if apply and result.changed:
            if result.syntax_ok is False:
                raise ToolError(f"not applied: the proposed {shown} does not parse ({result.syntax_error})")
            await anyio.Path(target).write_text(result.new_content, encoding="utf-8")
            result.applied = True
            result.summary += "; applied"
        return result

    @server.tool()
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
        target, files, shown = python_target(path)
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
        sources, checklist = await anyio.to_thread.run_sync(review_inputs, analysis)
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
