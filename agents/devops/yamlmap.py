"""YAML with line numbers: the parsed document plus where each mapping key sits, so findings can
point at a line. Parse errors become a ``YamlProblem`` with the line the parser stopped at.

Aliases are checked before anything walks the document: a recursive anchor, or aliases that expand to
more than ``MAX_EXPANDED_NODES`` nodes (an alias bomb: 454 bytes can name billions), is a YamlProblem,
so no check ever loops or walks an exponential tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Key = tuple[Any, ...]
MAX_EXPANDED_NODES = 100_000  # far above any real Compose file or workflow (a few thousand)


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
        if node is not None and (problem := _alias_problem(node)):
            return problem
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        return YamlProblem(mark.line + 1 if mark else None, f"invalid YAML: {problem}")
    except RecursionError:
        return YamlProblem(None, "invalid YAML: nested too deeply to read")
    lines = LineMap()
    if node is not None:
        _walk(node, (), lines.lines)
    return data, lines


class _Recursive(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _alias_problem(root: yaml.Node) -> YamlProblem | None:
    """Why the document's aliases make it unsafe to walk, or None. Sizes are memoised per node, so this
    costs one visit per distinct node however often aliases repeat them."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive(node)
        active.add(key)
        total = 1
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            for child in children:
                total += size(child)
                if total > MAX_EXPANDED_NODES:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    try:
        total = size(root)
    except _Recursive as err:
        return YamlProblem(err.node.start_mark.line + 1, "invalid YAML: a recursive anchor (an alias inside itself)")
    if total > MAX_EXPANDED_NODES:
        return YamlProblem(None, f"invalid YAML: aliases expand to more than {MAX_EXPANDED_NODES} nodes (alias bomb?)")
    return None


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
