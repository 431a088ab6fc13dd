"""The agent's four layers as paths: knowledge (baked, read-only), context (mounted, read-only),
memory (a volume), workspace (the current task's tree on the shared workspaces volume, or the agent's
own scratch directory outside a task). Also the one function that keeps paths inside a layer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.runtime.errors import PathOutsideWorkspace, ToolError
from agents.runtime.workspace import current_root

MAX_LAYER_FILE_BYTES = 2_000_000


def resolve_inside(root: Path, path: str | Path) -> Path:
    """``root / path`` resolved, or PathOutsideWorkspace if it escapes ``root`` (``..``, absolute, links)."""
    base = root.resolve()
    candidate = (base / path).resolve()
    if candidate != base and base not in candidate.parents:
        raise PathOutsideWorkspace(f"path {str(path)!r} is outside {base}")
    return candidate


@dataclass(frozen=True)
class Layers:
    knowledge: Path
    context: Path
    memory: Path
    scratch: Path  # the agent's own workspace, for calls that name no task workspace

    @property
    def workspace(self) -> Path:
        """The tree tools work on: the current call's task workspace, else ``scratch``."""
        return current_root(self.scratch)

    def ensure_writable(self) -> None:
        """Create memory and scratch if missing (they are volumes in containers, plain dirs elsewhere)."""
        for path in (self.memory, self.scratch):
            path.mkdir(parents=True, exist_ok=True)

    def workspace_path(self, path: str | Path, must_exist: bool = True) -> Path:
        """A path inside the workspace (relative paths) — the only place tools read and write trees."""
        resolved = resolve_inside(self.workspace, path)
        if must_exist and not resolved.exists():
            raise ToolError(f"{str(path)!r} does not exist in the workspace ({self.workspace})")
        return resolved

    def read_structured(self, layer: str, relative: str, default: Any = None) -> Any:
        """Parse a JSON or YAML file from the knowledge or context layer; ``default`` if it is absent."""
        root = {"knowledge": self.knowledge, "context": self.context}[layer]
        path = resolve_inside(root, relative)
        if not path.is_file():
            return default
        if path.stat().st_size > MAX_LAYER_FILE_BYTES:
            raise ToolError(f"{layer} file {relative} is larger than {MAX_LAYER_FILE_BYTES} bytes")
        text = path.read_text()
        try:
            return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ToolError(f"{layer} file {relative} is not valid {path.suffix[1:]}: {err}") from err

    def files(self, layer: str) -> list[Path]:
        """Every regular file in the knowledge or context layer, sorted."""
        root = {"knowledge": self.knowledge, "context": self.context}[layer]
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
