"""Reading the files a check is asked about: inside the workspace, regular, text, and not too big."""

from __future__ import annotations

from pathlib import Path

from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

MAX_INPUT_BYTES = 1_000_000


def read_workspace_text(layers: Layers, path: str, max_bytes: int = MAX_INPUT_BYTES) -> tuple[Path, str]:
    """The resolved path and UTF-8 text of ``path`` (relative to the workspace), or a ToolError saying why not."""
    resolved = layers.workspace_path(path)  # raises PathOutsideWorkspace / "does not exist"
    if not resolved.is_file():
        raise ToolError(f"{path!r} is not a regular file")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise ToolError(f"{path!r} is {size} bytes; the limit for this check is {max_bytes} bytes")
    try:
        return resolved, resolved.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ToolError(f"{path!r} is not UTF-8 text: {err}") from err
