"""What Reynolds stores of a tool's answer: always storable, always bounded.

Postgres ``jsonb`` and ``text`` refuse NUL characters and lone surrogates (what undecodable bytes turn
into), and JSON has no NaN or infinity; tools produce all of these (``scan_secrets`` on a binary file,
``run_pytest`` on a test that prints one). ``safe_output`` turns any result into a JSON value Postgres
accepts, under a size cap, and says what it changed; ``safe_text`` does the same for error text.
Nothing here raises on the value it is handed, so an unstorable result can never make a call run again.

A result over the cap is kept as a *truncated marker*: its size, the limit, and a preview of its
JSON text. ``$from`` refuses to pass a marker on (see ``reynolds.plan.resolve_references``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

REPLACEMENT = "\ufffd"
MAX_DEPTH = 64  # JSON nesting kept; deeper values become a note (Python's encoder recurses)
PREVIEW_CHARS = 4096
TRUNCATED_KEY = "$truncated"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _Changes:
    def __init__(self) -> None:
        self.replaced = 0  # NUL characters and lone surrogates
        self.numbers = 0  # NaN and infinities
        self.deep = 0  # values nested deeper than MAX_DEPTH
        self.other = 0  # values JSON has no form for

    def note(self) -> str | None:
        parts = []
        if self.replaced:
            parts.append(f"{self.replaced} NUL or undecodable characters replaced with U+FFFD")
        if self.numbers:
            parts.append(f"{self.numbers} NaN or infinite numbers stored as strings")
        if self.deep:
            parts.append(f"{self.deep} values nested deeper than {MAX_DEPTH} levels replaced with a note")
        if self.other:
            parts.append(f"{self.other} values with no JSON form stored as their text")
        return "; ".join(parts) or None


def _text(value: str, changes: _Changes) -> str:
    cleaned, count = _UNSTORABLE.subn(REPLACEMENT, value)
    changes.replaced += count
    return cleaned


def _clean(value: Any, changes: _Changes, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changes.numbers += 1
        return str(value)
    if isinstance(value, str):
        return _text(value, changes)
    if depth >= MAX_DEPTH:
        changes.deep += 1
        return f"[nested deeper than {MAX_DEPTH} levels: not kept]"
    if isinstance(value, dict):
        return {_text(str(k), changes): _clean(v, changes, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, changes, depth + 1) for v in value]
    changes.other += 1
    return _text(repr(value), changes)


def _truncated(text: str, limit: int) -> dict[str, Any]:
    return {
        TRUNCATED_KEY: {
            "size_bytes": len(text.encode()),
            "limit_bytes": limit,
            "note": f"the result is over the max_result_bytes limit ({limit} bytes); only a preview is kept",
        },
        # a character takes at most 6 bytes of JSON (an escape), so the marker stays well under the limit
        "preview": text[: min(PREVIEW_CHARS, limit // 8)],
    }


def safe_output(result: Any, max_bytes: int) -> tuple[Any, str | None]:
    """``result`` made storable and at most ``max_bytes`` of JSON, and a note saying what was changed (None:
    stored as it came)."""
    changes = _Changes()
    value = _clean(result, changes)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    note = changes.note()
    if len(text.encode()) > max_bytes:
        value = _truncated(text, max_bytes)
        note = "; ".join(filter(None, [value[TRUNCATED_KEY]["note"], note]))
    return value, note


def safe_text(text: str, max_chars: int) -> str:
    """Error text made storable and bounded; a cut says how long the text was."""
    cleaned = _text(text, _Changes())
    if len(cleaned) <= max_chars:
        return cleaned
    return f"{cleaned[:max_chars]}… [{len(cleaned)} characters; cut at {max_chars}]"


def is_truncated(value: Any) -> bool:
    return isinstance(value, dict) and TRUNCATED_KEY in value


def jsonb_bytes(value: Any) -> bytes:
    """The text of a ``jsonb`` parameter; whatever it is handed, it returns something Postgres accepts."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        if "\\u0000" not in text:
            return text.encode()  # a lone surrogate fails here and takes the careful path
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        pass
    return json.dumps(_clean(value, _Changes()), ensure_ascii=False).encode()


def first_unstorable(value: Any, where: str = "") -> str | None:
    """Where in ``value`` (a dotted path) a string holds a character Postgres cannot store, or None."""
    if isinstance(value, str):
        return where if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        pairs = [(str(i), v) for i, v in enumerate(value)]
    else:
        return None
    for step, item in pairs:
        path = f"{where}.{step}" if where else step
        if _UNSTORABLE.search(step):
            return path
        found = first_unstorable(item, path)
        if found is not None:
            return found
    return None
