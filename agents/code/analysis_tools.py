"""The code agent's read-only analysis tools: Python structure and complexity, line counts per language,
and Markdown API docs (stdlib ast and the workspace's files; nothing is run)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.code.api_docs import ApiDocs, package_docs
from agents.code.line_count import LANGUAGES_FILE, LineCounts, count_tree, load_languages
from agents.code.python_analysis import PythonAnalysis, analyse_tree, page
from agents.code.sources import python_target, relative, workspace_target, write_output
from agents.code.standards import load_standards
from agents.runtime import AgentRuntime
from agents.runtime.annotations import CHANGE_LOCAL, READ

WorkspacePath = Annotated[
    str, Field(min_length=1, max_length=1000, description="file or directory, relative to the agent's workspace")
]


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=READ)
    def analyze_python(
        path: WorkspacePath,
        limit: Annotated[int, Field(ge=1, le=500, description="list at most this many modules")] = 50,
        offset: Annotated[int, Field(ge=0, description="skip this many modules (from page.next_offset)")] = 0,
    ) -> PythonAnalysis:
        """Static analysis of a Python file or package in the workspace (stdlib ast; nothing is run):
        functions and classes (name, line, args, docstring present), cyclomatic complexity per
        function with those over the team's max_complexity flagged, imports and the import graph
        between the package's modules, TODO/FIXME/XXX comments with lines, the public API (__all__
        when declared), missing docstrings per the standards, and syntax errors as file:line:col.
        Totals and the summary cover the whole tree; modules are listed `limit` at a time from `offset`,
        and `page` says how many were left out and where the next page starts."""
        standards = load_standards(runtime).python
        target, files, _ = python_target(layers, path)
        return page(analyse_tree(files, target, layers.workspace, standards), offset, limit)

    @server.tool(annotations=READ)
    def count_lines(path: WorkspacePath) -> LineCounts:
        """Count code, comment and blank lines per language (by file extension: Python, JS/TS, Go, Rust,
        C/C++, Java, C#, shell, YAML, Markdown and more) for a file or directory tree in the workspace.
        Skips .git, node_modules, virtualenvs, caches and binary files."""
        table = load_languages(layers.read_structured("knowledge", LANGUAGES_FILE))
        target = workspace_target(layers, path)
        return count_tree(target, relative(layers, target), table)

    @server.tool(annotations=CHANGE_LOCAL)
    def generate_api_docs(
        path: WorkspacePath,
        output_path: Annotated[
            str | None, Field(description="also write the Markdown to this workspace file, e.g. docs/api.md")
        ] = None,
    ) -> ApiDocs:
        """Markdown API reference for a Python package or module in the workspace, from its source:
        module docstrings, then public classes (with public methods) and functions with their
        signatures and docstrings; __all__ decides what is public when present; tests are left out."""
        target, files, shown = python_target(layers, path)
        docs = package_docs(files, target, layers.workspace, shown if target.is_file() else target.name)
        if output_path:
            docs.written_to = write_output(layers, output_path, docs.markdown)
        return docs
