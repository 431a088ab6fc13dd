"""Compose variable interpolation (``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``${VAR:+alternative}``, ``$$``), as the Compose Specification defines it, so checks
see the values Compose would use.

Values come from the ``.env`` file next to the Compose file only, never from the agent's environment
(which must not leak into a report). An unset variable becomes the empty string with a warning, as
Compose does; ``${VAR:?message}`` on an unset variable is an error."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
TOKEN = re.compile(rf"\$(?:(\$)|\{{({NAME})(?:(:?[-?+])((?:[^{{}}]|\{{[^{{}}]*\}})*))?\}}|({NAME}))")
MAX_ENV_BYTES = 256_000


@dataclass
class Interpolated:
    data: Any
    unset: dict[tuple[Any, ...], list[str]] = field(default_factory=dict)  # path -> variables not set
    required: dict[tuple[Any, ...], list[str]] = field(default_factory=dict)  # path -> ${VAR:?} messages


def read_env_file(directory: Path) -> dict[str, str]:
    """KEY=VALUE lines of ``directory/.env`` (``export``, quotes and comments handled); absent is empty."""
    path = directory / ".env"
    if not path.is_file() or path.stat().st_size > MAX_ENV_BYTES:
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip().removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#") or not re.fullmatch(NAME, key.strip()):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def interpolate(data: Any, env: dict[str, str]) -> Interpolated:
    result = Interpolated(None)
    result.data = _walk(data, (), env, result)
    return result


def _walk(value: Any, path: tuple[Any, ...], env: dict[str, str], out: Interpolated) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), env, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), env, out) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        return _string(value, path, env, out)
    return value


def _string(text: str, path: tuple[Any, ...], env: dict[str, str], out: Interpolated) -> str:
    def replace(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return _string(arg, path, env, out) if empty else value or ""
        if op in (":+", "+"):
            return "" if empty else _string(arg, path, env, out)
        if op in (":?", "?") and empty:
            out.required.setdefault(path, []).append(f"{name}: {arg or 'required variable is not set'}")
            return ""
        if value is None:
            out.unset.setdefault(path, []).append(name)
        return value or ""

    return TOKEN.sub(replace, text)
