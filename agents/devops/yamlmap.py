"""YAML with line numbers: the parsed document plus where each mapping key sits, so findings can
point at a line. Parse errors become a ``YamlProblem`` with the line the parser stopped at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Key = tuple[Any, ...]


@dataclass(frozen=True)
class YamlProblem:
    line: int | None
    message: str


@dataclass
class LineMap:
    """1-based line of every key path (e.g. ``("services", "web", "ports", 0)``) in a document."""

    lines: dict[Key, int] = field(default_factory=dict)

    def line(self, *path: Any) -> int | None:
        """Line of ``path``, or of its nearest recorded ancestor."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def load(text: str) -> tuple[Any, LineMap] | YamlProblem:
    """Parse one YAML document (safe loader); a YamlProblem instead of raising on bad YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        return YamlProblem(mark.line + 1 if mark else None, f"invalid YAML: {problem}")
    lines = LineMap()
    if node is not None:
        _walk(node, (), lines.lines)
    return data, lines


def _walk(node: yaml.Node, path: Key, out: dict[Key, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            out.setdefault((*path, key), key_node.start_mark.line + 1)
            _walk(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.setdefault((*path, index), item.start_mark.line + 1)
            _walk(item, (*path, index), out)


def _scalar(node: yaml.Node) -> Any:
    """A key as safe_load builds it (YAML 1.1 makes ``on:`` the boolean True, as in the parsed data)."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag == "tag:yaml.org,2002:bool":
        return node.value.lower() in ("true", "yes", "on", "y")
    if node.tag == "tag:yaml.org,2002:int":
        try:
            return int(node.value)
        except ValueError:
            return node.value
    return node.value
