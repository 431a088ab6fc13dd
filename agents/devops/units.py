"""Parsing the units Compose files use: memory sizes ("512m", "2G") and durations ("1m30s", "500ms")."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_SIZE_FACTOR = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION_FACTOR = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def size_bytes(value: object) -> int | None:
    """Bytes in a Compose size (an int is bytes already); None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    m = _SIZE.match(str(value))
    return int(float(m.group(1)) * _SIZE_FACTOR[m.group(2).lower()]) if m else None


def duration_s(value: object) -> float | None:
    """Seconds in a Compose duration such as "1m30s"; None when it cannot be read."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _DURATION_FACTOR[u] for n, u in parts)
