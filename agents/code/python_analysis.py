"""Static analysis of Python modules with the stdlib ``ast`` and ``tokenize``: functions and classes,
complexity, imports (and the import graph inside a package), TODO-style comments, the public API
and missing docstrings. Nothing is imported or executed."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from pydantic import BaseModel, Field

from agents.code.complexity import FunctionNode, cyclomatic_complexity
from agents.code.sources import read_source
from agents.code.standards import PythonStandards
from agents.runtime.errors import ToolError

TODO_TAGS = re.compile(r"\b(TODO|FIXME|XXX)\b[:\s]*(.*)")


class FunctionInfo(BaseModel):
    name: str
    qualname: str = Field(description="dotted path inside the module, e.g. Parser.parse or outer.<locals>.inner")
    line: int
    end_line: int
    args: list[str]
    is_async: bool
    is_method: bool
    has_docstring: bool
    complexity: int
    over_max_complexity: bool


class ClassInfo(BaseModel):
    name: str
    line: int
    bases: list[str]
    methods: list[str]
    has_docstring: bool


class ImportInfo(BaseModel):
    line: int
    module: str = Field(description="absolute module name, relative imports resolved when the package is known")
    names: list[str] = Field(description="names taken with `from m import ...`; empty for `import m`")


class TodoComment(BaseModel):
    line: int
    tag: str
    text: str


class SyntaxProblem(BaseModel):
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class DocstringGap(BaseModel):
    file: str
    line: int
    kind: str = Field(description="module | public_class | public_function")
    name: str


class ModuleReport(BaseModel):
    file: str
    module: str
    lines: int
    has_docstring: bool
    docstring_summary: str | None
    functions: list[FunctionInfo] = Field(default_factory=list)
    classes: list[ClassInfo] = Field(default_factory=list)
    imports: list[ImportInfo] = Field(default_factory=list)
    todos: list[TodoComment] = Field(default_factory=list)
    public_api: list[str] = Field(default_factory=list)
    declares_all: bool = Field(False, description="public_api comes from a literal __all__")
    missing_docstrings: list[DocstringGap] = Field(default_factory=list)
    syntax_error: SyntaxProblem | None = None


def module_name(file: Path, package_root: Path | None) -> str:
    """Dotted name of ``file`` within ``package_root`` (``pkg/sub/__init__.py`` -> ``pkg.sub``)."""
    if package_root is None:
        return file.stem
    base = package_root.parent if (package_root / "__init__.py").is_file() else package_root
    parts = list(file.relative_to(base).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or file.stem


def _docstring_summary(node: ast.AST) -> str | None:
    doc = ast.get_docstring(node)  # type: ignore[arg-type]
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _arg_names(fn: FunctionNode) -> list[str]:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args)]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    names += [x.arg for x in a.kwonlyargs]
    if a.kwarg:
        names.append("**" + a.kwarg.arg)
    return names


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` names; relative levels count from ``module``'s package."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if module else []
    package = parts if is_package else parts[:-1]
    keep = len(package) - (node.level - 1)
    base = package[: max(keep, 0)]
    return ".".join([*base, node.module] if node.module else base)


def _todos(source: str) -> list[TodoComment]:
    found: list[TodoComment] = []
    try:
        comments = [
            (tok.start[0], tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError):
        # an unfinished file still deserves its TODOs: fall back to "text after a #" per line
        comments = [(n, line[line.index("#") :]) for n, line in enumerate(source.splitlines(), 1) if "#" in line]
    for line, text in comments:
        match = TODO_TAGS.search(text)
        if match:
            found.append(TodoComment(line=line, tag=match.group(1), text=match.group(2).strip()))
    return found


def declared_all(tree: ast.Module) -> list[str] | None:
    """The module's literal ``__all__``, or None when it has none (or computes it)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None  # a computed __all__: callers fall back to naming conventions
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else None
    return None


def _top_level_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return list(dict.fromkeys(names))


def _public_api(tree: ast.Module) -> tuple[list[str], bool]:
    """(public names, whether they come from ``__all__``)."""
    exported = declared_all(tree)
    if exported is not None:
        return exported, True
    return [n for n in _top_level_names(tree) if not n.startswith("_")], False


class _Collector(ast.NodeVisitor):
    """Walks one module, keeping the qualified name of the scope it is in."""

    def __init__(self, max_complexity: int) -> None:
        self.max_complexity = max_complexity
        self.functions: list[FunctionInfo] = []
        self.classes: list[ClassInfo] = []
        self.scope: list[tuple[str, str]] = []  # (kind, name): kind is "class" or "function"

    def _qualname(self, name: str) -> str:
        parts = [n if kind == "class" else f"{n}.<locals>" for kind, n in self.scope]
        return ".".join([*parts, name])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        methods = [n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        bases = [ast.unparse(b) for b in node.bases]
        self.classes.append(
            ClassInfo(
                name=self._qualname(node.name),
                line=node.lineno,
                bases=bases,
                methods=methods,
                has_docstring=ast.get_docstring(node) is not None,
            )
        )
        self.scope.append(("class", node.name))
        self.generic_visit(node)
        self.scope.pop()

    def _function(self, node: FunctionNode) -> None:
        complexity = cyclomatic_complexity(node)
        self.functions.append(
            FunctionInfo(
                name=node.name,
                qualname=self._qualname(node.name),
                line=node.lineno,
                end_line=node.end_lineno or node.lineno,
                args=_arg_names(node),
                is_async=isinstance(node, ast.AsyncFunctionDef),
                is_method=bool(self.scope) and self.scope[-1][0] == "class",
                has_docstring=ast.get_docstring(node) is not None,
                complexity=complexity,
                over_max_complexity=complexity > self.max_complexity,
            )
        )
        self.scope.append(("function", node.name))
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function


def _is_public(qualname: str) -> bool:
    return "<locals>" not in qualname and not any(
        part.startswith("_") and not (part.startswith("__") and part.endswith("__")) for part in qualname.split(".")
    )


def _docstring_gaps(report: ModuleReport, standards: PythonStandards) -> list[DocstringGap]:
    wanted = set(standards.required_docstrings)
    gaps: list[DocstringGap] = []
    if "module" in wanted and not report.has_docstring:
        gaps.append(DocstringGap(file=report.file, line=1, kind="module", name=report.module))
    if "public_class" in wanted:
        gaps += [
            DocstringGap(file=report.file, line=c.line, kind="public_class", name=c.name)
            for c in report.classes
            if not c.has_docstring and _is_public(c.name)
        ]
    if "public_function" in wanted:
        gaps += [
            DocstringGap(file=report.file, line=f.line, kind="public_function", name=f.qualname)
            for f in report.functions
            # dunder methods document themselves by protocol; only named API needs words
            if not f.has_docstring and _is_public(f.qualname) and not f.name.startswith("__")
        ]
    return gaps


def analyse_module(source: str, file: str, module: str, is_package: bool, standards: PythonStandards) -> ModuleReport:
    """Everything ``analyze_python`` reports about one module's source text."""
    lines = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
    todos = _todos(source)
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as err:
        problem = SyntaxProblem(file=file, line=err.lineno or 0, col=err.offset or 0, message=err.msg)
        return ModuleReport(
            file=file,
            module=module,
            lines=lines,
            has_docstring=False,
            docstring_summary=None,
            todos=todos,
            syntax_error=problem,
        )
    collector = _Collector(standards.max_complexity)
    collector.visit(tree)
    imports: list[ImportInfo] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [ImportInfo(line=node.lineno, module=alias.name, names=[]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(node, module, is_package)
            imports.append(ImportInfo(line=node.lineno, module=target, names=[a.name for a in node.names]))
    imports.sort(key=lambda i: i.line)
    public_api, declares_all = _public_api(tree)
    report = ModuleReport(
        file=file,
        module=module,
        lines=lines,
        has_docstring=ast.get_docstring(tree) is not None,
        docstring_summary=_docstring_summary(tree),
        functions=collector.functions,
        classes=collector.classes,
        imports=imports,
        todos=todos,
        public_api=public_api,
        declares_all=declares_all,
    )
    report.missing_docstrings = _docstring_gaps(report, standards)
    return report


def import_graph(reports: list[ModuleReport]) -> dict[str, list[str]]:
    """Edges between the analysed modules only: module -> the sibling modules it imports.
    ``from pkg import sub`` counts as importing ``pkg.sub`` when that module was analysed, and as
    importing ``pkg`` too when some other name comes from ``pkg`` itself."""
    known = {r.module for r in reports}
    graph: dict[str, list[str]] = {}
    for report in reports:
        targets: set[str] = set()
        for imp in report.imports:
            submodules = {f"{imp.module}.{n}" for n in imp.names} & known
            targets |= submodules
            if imp.module in known and len(submodules) < max(len(imp.names), 1):
                targets.add(imp.module)  # some names come from the module itself, not a submodule
        targets.discard(report.module)
        graph[report.module] = sorted(targets)
    return graph


class ComplexFunction(BaseModel):
    file: str
    qualname: str
    line: int
    complexity: int


class SkippedFile(BaseModel):
    file: str
    reason: str


class PythonAnalysis(BaseModel):
    path: str
    files_analyzed: int
    max_complexity: int = Field(description="the limit from context team/standards.json")
    modules: list[ModuleReport]
    import_graph: dict[str, list[str]] = Field(description="module -> modules of this tree it imports")
    complex_functions: list[ComplexFunction] = Field(description="functions over max_complexity, worst first")
    syntax_errors: list[SyntaxProblem]
    todos: int
    missing_docstrings: int
    skipped: list[SkippedFile] = Field(default_factory=list)
    summary: str
    page: Page | None = Field(None, description="which modules this answer lists, and what it left out")


class Page(BaseModel):
    """One page of a tree's modules; totals and the summary always cover the whole tree."""

    offset: int
    limit: int
    modules_total: int
    modules_left_out: int = Field(description="modules of the tree not in this answer")
    next_offset: int | None = Field(description="offset of the next page; None on the last one")
    complex_functions_total: int


MAX_COMPLEX_LISTED = 100


def page(analysis: PythonAnalysis, offset: int, limit: int) -> PythonAnalysis:
    """``analysis`` with only modules[offset:offset+limit] (and their import-graph entries) listed, the
    worst MAX_COMPLEX_LISTED complex functions, and a Page saying what was left out."""
    shown = analysis.modules[offset : offset + limit]
    names = {m.module for m in shown}
    end = offset + len(shown)
    info = Page(
        offset=offset,
        limit=limit,
        modules_total=len(analysis.modules),
        modules_left_out=len(analysis.modules) - len(shown),
        next_offset=end if end < len(analysis.modules) else None,
        complex_functions_total=len(analysis.complex_functions),
    )
    return analysis.model_copy(
        update={
            "modules": shown,
            "import_graph": {k: v for k, v in analysis.import_graph.items() if k in names},
            "complex_functions": analysis.complex_functions[:MAX_COMPLEX_LISTED],
            "page": info,
        }
    )


def analyse_tree(files: list[Path], target: Path, workspace: Path, standards: PythonStandards) -> PythonAnalysis:
    """Analyse ``files`` (the Python files under ``target``), naming files relative to ``workspace``."""
    root = workspace.resolve()
    package_root = target if target.is_dir() else None
    reports: list[ModuleReport] = []
    skipped: list[SkippedFile] = []
    for file in files:
        shown = file.relative_to(root).as_posix()
        try:
            source = read_source(file, shown)
        except (ToolError, OSError) as err:  # one unreadable file must not sink the whole tree's report
            if target.is_file():
                raise
            skipped.append(SkippedFile(file=shown, reason=str(err)))
            continue
        name = module_name(file, package_root)
        reports.append(analyse_module(source, shown, name, file.name == "__init__.py", standards))
    complex_functions = sorted(
        (
            ComplexFunction(file=r.file, qualname=f.qualname, line=f.line, complexity=f.complexity)
            for r in reports
            for f in r.functions
            if f.over_max_complexity
        ),
        key=lambda c: (-c.complexity, c.file, c.line),
    )
    syntax_errors = [r.syntax_error for r in reports if r.syntax_error]
    todos = sum(len(r.todos) for r in reports)
    gaps = sum(len(r.missing_docstrings) for r in reports)
    functions = sum(len(r.functions) for r in reports)
    summary = (
        f"{len(reports)} module(s), {functions} function(s); "
        f"{len(complex_functions)} over complexity {standards.max_complexity}; "
        f"{len(syntax_errors)} syntax error(s); {todos} TODO/FIXME/XXX; {gaps} missing docstring(s)"
    )
    if syntax_errors:
        summary += ". Syntax errors: " + "; ".join(str(e) for e in syntax_errors[:5])
    return PythonAnalysis(
        path=target.relative_to(root).as_posix() if target != root else ".",
        files_analyzed=len(reports),
        max_complexity=standards.max_complexity,
        modules=reports,
        import_graph=import_graph(reports),
        complex_functions=complex_functions,
        syntax_errors=syntax_errors,
        todos=todos,
        missing_docstrings=gaps,
        skipped=skipped,
        summary=summary,
    )
