"""Finding and reading source files in the workspace: which directories a tree walk skips, what counts
as binary, the size cap, and turning a caller's path into a workspace path with a clear error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

MAX_SOURCE_BYTES = 2_000_000  # a larger "source" file is generated or data; parsing it is not useful
MAX_TREE_FILES = 20_000

# Directories that hold tooling state, dependencies or virtualenvs, never the project's own code.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".eggs",
        "site-packages",
        ".reynolds",
    }
)


def workspace_target(layers: Layers, path: str) -> Path:
    """The existing file or directory ``path`` names inside the workspace."""
    if not path.strip():
        raise ToolError("path is empty; give a file or directory relative to the workspace")
    return layers.workspace_path(path, must_exist=True)


def relative(layers: Layers, path: Path) -> str:
    """``path`` as the caller names it: relative to the workspace, with forward slashes."""
    root = layers.workspace.resolve()
    return "." if path == root else path.relative_to(root).as_posix()


def is_binary(path: Path) -> bool:
    """True when the first 8 KiB hold a NUL byte: what git and most editors treat as binary."""
    with path.open("rb") as f:
        return b"\0" in f.read(8192)


def read_source(path: Path, shown_as: str) -> str:
    """The text of one source file, or a ToolError naming why it cannot be read as source."""
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise ToolError(f"{shown_as} is {size} bytes; files over {MAX_SOURCE_BYTES} bytes are not analysed")
    if is_binary(path):
        raise ToolError(f"{shown_as} is a binary file, not source text")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ToolError(f"{shown_as} is not UTF-8 text: {err}") from err


def _is_venv(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").is_file()


def walk_files(root: Path, suffixes: tuple[str, ...] | None = None) -> Iterator[Path]:
    """Files under ``root`` in sorted order, skipping tooling/dependency directories and virtualenvs.
    Symlinks are not followed, so a walk cannot leave the workspace."""
    seen = 0
    for current, dirs, files in os.walk(root, followlinks=False):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not _is_venv(here / d))
        for name in sorted(files):
            file = here / name
            if file.is_symlink() or (suffixes and not name.endswith(suffixes)):
                continue
            seen += 1
            if seen > MAX_TREE_FILES:
                raise ToolError(f"{root} holds more than {MAX_TREE_FILES} files; point the tool at a subdirectory")
            yield file


def python_files(target: Path) -> list[Path]:
    """The ``.py`` files ``target`` names: itself if it is a file, else every one in the tree."""
    if target.is_file():
        if target.suffix not in (".py", ".pyi"):
            raise ToolError(f"{target.name} is not a Python file (.py)")
        return [target]
    return list(walk_files(target, (".py",)))


def python_target(layers: Layers, path: str) -> tuple[Path, list[Path], str]:
    """(resolved path, its Python files, the name to show) — a single file is checked for size and
    binary content up front so the caller gets that error rather than a parser's."""
    target = workspace_target(layers, path)
    files = python_files(target)
    shown = relative(layers, target)
    if target.is_file():
        read_source(target, shown)
    return target, files, shown


def write_output(layers: Layers, output_path: str, text: str, overwrite: bool = True) -> str:
    """Write ``text`` to a workspace file (parents created); returns the path as shown to the caller."""
    out = layers.workspace_path(output_path, must_exist=False)
    if out.is_dir():
        raise ToolError(f"output_path {output_path!r} is a directory; name a file")
    if out.exists() and not overwrite:
        raise ToolError(f"{output_path!r} already exists; pass overwrite=true to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return relative(layers, out)
