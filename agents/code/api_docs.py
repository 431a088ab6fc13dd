"""Markdown API reference for a Python package, written from its source with ``ast`` (nothing is
imported): module docstrings, then each public class and function with its signature and docstring."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel, Field

from agents.code.python_analysis import SyntaxProblem, declared_all, module_name
from agents.code.sources import read_source
from agents.runtime.errors import ToolError

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class ApiDocs(BaseModel):
    path: str
    markdown: str
    modules_documented: list[str]
    symbols_documented: int
    syntax_errors: list[SyntaxProblem] = Field(default_factory=list)
    written_to: str | None = Field(None, description="workspace file the Markdown was written to, if asked")
    summary: str


def _is_documented_module(file: Path, package_root: Path) -> bool:
    """Public modules only: no ``_private`` parts (``__init__`` is the package itself) and no tests."""
    parts = file.relative_to(package_root).with_suffix("").parts
    if any(p in ("tests", "test") or p.startswith("test_") for p in parts):
        return False
    return not any(p.startswith("_") and p != "__init__" for p in parts)


def _signature(node: FunctionNode) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _doc(node: ast.AST) -> str:
    doc = ast.get_docstring(node)  # type: ignore[arg-type]
    return doc.strip() if doc else "_No docstring._"


def _public(name: str, exported: set[str] | None) -> bool:
    return name in exported if exported is not None else not name.startswith("_")


def _function_md(node: FunctionNode, level: str) -> list[str]:
    return [f"{level} `{node.name}`", "", "```python", _signature(node), "```", "", _doc(node), ""]


def _class_md(node: ast.ClassDef) -> tuple[list[str], int]:
    bases = ", ".join(ast.unparse(b) for b in node.bases)
    lines = [
        f"### class `{node.name}`",
        "",
        "```python",
        f"class {node.name}({bases})" if bases else f"class {node.name}",
    ]
    lines += ["```", "", _doc(node), ""]
    count = 1
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            not item.name.startswith("_") or item.name == "__init__"
        ):
            lines += _function_md(item, "####")
            count += 1
    return lines, count


def module_markdown(tree: ast.Module, name: str) -> tuple[list[str], int]:
    """The Markdown section for one parsed module and how many symbols it documents."""
    listed = declared_all(tree)
    exported = set(listed) if listed is not None else None
    doc = ast.get_docstring(tree)
    lines = [f"## `{name}`", "", doc.strip() if doc else "_No module docstring._", ""]
    count = 0
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and _public(node.name, exported):
            section, n = _class_md(node)
            lines += section
            count += n
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(node.name, exported):
            lines += _function_md(node, "###")
            count += 1
    return lines, count


def package_docs(files: list[Path], target: Path, workspace: Path, title: str) -> ApiDocs:
    """API docs for the Python ``files`` of ``target`` (a package directory or one module)."""
    root = workspace.resolve()
    package_root = target if target.is_dir() else None
    chosen = [f for f in files if package_root is None or _is_documented_module(f, package_root)]
    named = sorted((module_name(f, package_root), f) for f in chosen)
    body: list[str] = []
    documented: list[str] = []
    errors: list[SyntaxProblem] = []
    symbols = 0
    for name, file in named:
        shown = file.relative_to(root).as_posix()
        try:
            tree = ast.parse(read_source(file, shown), filename=shown)
        except SyntaxError as err:
            errors.append(SyntaxProblem(file=shown, line=err.lineno or 0, col=err.offset or 0, message=err.msg))
            body += [f"## `{name}`", "", f"> Not documented: syntax error at {shown}:{err.lineno}: {err.msg}", ""]
            continue
        except ToolError as err:
            body += [f"## `{name}`", "", f"> Not documented: {err}", ""]
            continue
        section, n = module_markdown(tree, name)
        body += section
        documented.append(name)
        symbols += n
    toc = [f"- [`{m}`](#{m.replace('.', '').lower()})" for m in documented]
    markdown = "\n".join([f"# API reference: {title}", "", *toc, "", *body]).rstrip() + "\n"
    summary = f"{len(documented)} module(s), {symbols} public symbol(s) documented"
    if errors:
        summary += f"; {len(errors)} module(s) skipped for syntax errors"
    return ApiDocs(
        path=target.relative_to(root).as_posix() if target != root else ".",
        markdown=markdown,
        modules_documented=documented,
        symbols_documented=symbols,
        syntax_errors=errors,
        summary=summary,
    )
