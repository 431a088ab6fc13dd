"""Read a ``tools/call`` handler result, which middleware sees as a pydantic model or a plain dict."""

from __future__ import annotations

from typing import Any


def is_error(result: Any) -> bool:
    if isinstance(result, dict):
        return bool(result.get("isError") or result.get("is_error"))
    return bool(getattr(result, "is_error", False))


def error_text(result: Any) -> str:
    content = result.get("content", []) if isinstance(result, dict) else getattr(result, "content", [])
    return " ".join((c.get("text", "") if isinstance(c, dict) else getattr(c, "text", "")) for c in content or [])
