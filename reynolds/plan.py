"""Plan validation and scheduling order.

``build_plan`` turns a client's ``Plan`` into the DAG Reynolds will run, or raises a ``PlanError``
that names what is wrong (duplicate id, unknown dependency, the cycle, unknown tool, the limit, an
argument the tool's input schema does not accept). ``resolve_references`` fills
``{"$from": id, "path": "a.b"}`` placeholders at dispatch time, under a size cap.

Arguments are checked against the input schema the tool listed, with two deliberate changes:

- An object schema that names its ``properties`` and says nothing about others (what ``MCPServer``
  generates, and it then drops unknown arguments silently) is read as closed: an unknown name is
  refused, so a misspelling cannot pass. A schema that allows others explicitly
  (``additionalProperties`` true or a schema, ``patternProperties``) keeps them.
- A ``$from`` placeholder stands for a value not known yet: it is accepted wherever the schema puts a
  value, and the agent checks the value it gets.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonschema
import referencing.exceptions

from reynolds import errors, payload
from reynolds.models import Plan, PlannedSubtask, PlanView, Strategy

Catalog = Mapping[str, set[str]]  # tool name -> pools offering it
Estimator = Callable[[str, str], float]  # (pool, tool) -> expected seconds
Specs = Mapping[tuple[str, str], Mapping[str, Any]]  # (pool, tool) -> {"input_schema": ..., ...}
MAX_SCHEMA_BYTES = 64_000  # an input schema larger than this is not kept (nor checked against)
PLACEHOLDER_KEYS = frozenset({"$from", "path"})
STEP = re.compile(r"-?\d+|[^-].*")  # a dotted path's step: an index, or a key not starting with "-"


def build_plan(
    plan: Plan,
    catalog: Catalog,
    *,
    max_subtasks: int,
    max_depth: int,
    max_argument_bytes: int,
    strategy: Strategy = "parallel",
    estimate: Estimator = lambda pool, tool: 1.0,
    tool_specs: Specs | None = None,
    max_result_bytes: int | None = None,
    max_resolved_argument_bytes: int | None = None,
    approve_destructive: bool = False,
) -> PlanView:
    """The DAG to run. ``tool_specs`` give the input schemas to check arguments against; with both size
    settings, a subtask whose ``$from`` arguments could resolve to more than ``max_resolved_argument_bytes``
    (each placeholder at most one stored result, ``max_result_bytes``) is refused. With
    ``approve_destructive``, every call of a destructive tool waits for approval."""
    specs = plan.subtasks
    if len(specs) > max_subtasks:
        raise errors.LimitExceeded(f"plan has {len(specs)} subtasks; the limit (max_subtasks) is {max_subtasks}")
    ids: set[str] = set()
    for spec in specs:
        if spec.id in ids:
            raise errors.DuplicateSubtask(f"subtask id {spec.id!r} is used more than once")
        ids.add(spec.id)

    planned: dict[str, PlannedSubtask] = {}
    checker = ArgumentChecker(tool_specs or {})
    for spec in specs:
        size = len(json.dumps(spec.arguments, separators=(",", ":")))
        if size > max_argument_bytes:
            raise errors.LimitExceeded(
                f"arguments of subtask {spec.id!r} are {size} bytes; the limit (max_argument_bytes) is "
                f"{max_argument_bytes}"
            )
        _check_contents(spec.id, spec.arguments, size, max_result_bytes, max_resolved_argument_bytes)
        depends_on = list(dict.fromkeys(spec.depends_on))
        for ref in references(spec.arguments):
            if ref not in ids:
                raise errors.BadReference(f"subtask {spec.id!r} reads from {ref!r}, which is not in the plan")
            if ref not in depends_on:
                depends_on.append(ref)  # reading a result implies waiting for it
        for dep in depends_on:
            if dep == spec.id:
                raise errors.CycleError(f"subtask {spec.id!r} depends on itself")
            if dep not in ids:
                raise errors.UnknownDependency(f"subtask {spec.id!r} depends on {dep!r}, which is not in the plan")
        pool = _pool_for(spec.id, spec.tool, spec.pool, catalog)
        checker.check(spec.id, pool, spec.tool, spec.arguments)
        planned[spec.id] = PlannedSubtask(
            id=spec.id,
            tool=spec.tool,
            pool=pool,
            arguments=spec.arguments,
            depends_on=depends_on,
            retryable=spec.retryable,
            timeout_s=spec.timeout_s,
            max_attempts=spec.max_attempts,
            rank=0.0,
            requires_approval=spec.requires_approval
            or (approve_destructive and is_destructive((tool_specs or {}).get((pool, spec.tool), {}))),
        )

    order = _topological_order(planned)
    levels = _levels(planned, order)
    if len(levels) > max_depth:
        raise errors.LimitExceeded(f"plan is {len(levels)} subtasks deep; the limit (max_depth) is {max_depth}")

    cost = {sid: max(estimate(s.pool, s.tool), 0.001) for sid, s in planned.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in planned}
    for sid, s in planned.items():
        for dep in s.depends_on:
            dependents[dep].append(sid)
    best_next: dict[str, str | None] = {}
    for sid in reversed(order):  # longest remaining path, sinks first
        tail = max(dependents[sid], key=lambda d: planned[d].rank, default=None)
        best_next[sid] = tail
        planned[sid].rank = cost[sid] + (planned[tail].rank if tail else 0.0)

    total_work = sum(cost.values())
    start = max(planned.values(), key=lambda s: s.rank)
    critical = [start.id]
    while (nxt := best_next[critical[-1]]) is not None:
        critical.append(nxt)

    if strategy == "auto":
        # parallel only pays when the plan is wider than a chain: compare work to the critical path
        strategy = "parallel" if total_work > start.rank * 1.05 else "sequential"
    if strategy == "sequential":
        # descending rank is a topological order (a subtask outranks everything after it): critical first
        chain = sorted(order, key=lambda sid: -planned[sid].rank)
        for before, after in itertools.pairwise(chain):
            if before not in planned[after].depends_on:
                planned[after].after = [before]
    return PlanView(
        strategy=strategy,
        subtasks=[planned[sid] for sid in order],
        levels=levels,
        critical_path=critical,
        estimated_makespan_s=round(total_work if strategy == "sequential" else start.rank, 3),
        estimated_total_work_s=round(total_work, 3),
    )


def _pool_for(sid: str, tool: str, pool: str | None, catalog: Catalog) -> str:
    offered = catalog.get(tool, set())
    if pool is not None:
        if pool not in offered:
            where = f"; it is offered by {', '.join(sorted(offered))}" if offered else ""
            raise errors.UnknownTool(f"subtask {sid!r}: pool {pool!r} has no tool {tool!r}{where}")
        return pool
    if not offered:
        raise errors.UnknownTool(f"subtask {sid!r}: no registered pool offers tool {tool!r}")
    if len(offered) > 1:
        raise errors.AmbiguousTool(
            f'subtask {sid!r}: tool {tool!r} is offered by pools {", ".join(sorted(offered))}; set "pool"'
        )
    return next(iter(offered))


def _topological_order(planned: Mapping[str, PlannedSubtask]) -> list[str]:
    """Kahn's algorithm, keeping plan order among equals; on a cycle, name it."""
    indegree = {sid: len(s.depends_on) for sid, s in planned.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in planned}
    for sid, s in planned.items():
        for dep in s.depends_on:
            dependents[dep].append(sid)
    ready = deque(sid for sid, n in indegree.items() if n == 0)
    order: list[str] = []
    while ready:
        sid = ready.popleft()
        order.append(sid)
        for d in dependents[sid]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    if len(order) < len(planned):
        raise errors.CycleError(
            f"plan has a dependency cycle (each depends on the next): {' -> '.join(_find_cycle(planned, indegree))}"
        )
    return order


def _find_cycle(planned: Mapping[str, PlannedSubtask], indegree: Mapping[str, int]) -> list[str]:
    # every node left with indegree > 0 sits on or behind a cycle; walking dependencies must loop
    start = next(sid for sid, n in indegree.items() if n > 0)
    seen: dict[str, int] = {}
    path: list[str] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(dep for dep in planned[node].depends_on if indegree[dep] > 0)
    cycle = path[seen[node] :]
    return [*cycle, cycle[0]]


def _levels(planned: Mapping[str, PlannedSubtask], order: list[str]) -> list[list[str]]:
    level: dict[str, int] = {}
    for sid in order:
        level[sid] = 1 + max((level[d] for d in planned[sid].depends_on), default=-1)
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for sid in order:
        waves[level[sid]].append(sid)
    return waves


def _check_contents(
    sid: str, arguments: dict[str, Any], literal: int, per_result: int | None, limit: int | None
) -> None:
    """Refuse what Postgres cannot store, malformed placeholders, and arguments that could resolve past the
    limit (each placeholder stands for up to one stored result)."""
    if (where := payload.first_unstorable(arguments)) is not None:
        raise errors.InvalidArgument(
            f"subtask {sid!r}: argument {where!r} holds a NUL or unpaired surrogate character, which Reynolds "
            "cannot store"
        )
    placeholders = check_placeholders(sid, arguments)
    if not (placeholders and per_result and limit):
        return
    worst = literal + placeholders * per_result
    if worst > limit:
        raise errors.LimitExceeded(
            f"subtask {sid!r} reads {placeholders} $from values of up to {per_result} bytes each (max_result_bytes):"
            f" up to {worst} bytes of arguments; the limit (max_resolved_argument_bytes) is {limit}"
        )


# ---------------------------------------------------------------- input schemas


def bounded_schema(schema: Any) -> dict[str, Any] | None:
    """An input schema as a tool listed it, if Reynolds can keep and use it: a valid JSON Schema of at most
    ``MAX_SCHEMA_BYTES``. Anything else is dropped (None), and that tool's arguments go unchecked."""
    try:
        if not isinstance(schema, dict) or len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
            return None
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (jsonschema.SchemaError, RecursionError, TypeError, ValueError):
        return None
    return schema


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalItems", "not", "if", "then", "else", "contains")
_OPEN = frozenset({"additionalProperties", "patternProperties", "unevaluatedProperties", "allOf", "$ref"})


def closed(schema: Any) -> Any:
    """``schema`` with every object that names its properties and says nothing about others closed to others.
    Parts of an ``allOf`` are left as they are: each names only some of the properties."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: closed(sub) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [closed(sub) for sub in out[key]]
    for key in _SUBSCHEMAS:
        if key in out:
            out[key] = closed(out[key])
    if "properties" in out and not _OPEN & out.keys():
        out["additionalProperties"] = False
    return out


class ArgumentChecker:
    """Checks arguments against the tools' input schemas; one compiled validator per (pool, tool)."""

    def __init__(self, tool_specs: Specs) -> None:
        self.tool_specs = tool_specs
        self._validators: dict[tuple[str, str], Any] = {}

    def _validator(self, pool: str, tool: str) -> Any:
        key = (pool, tool)
        if key not in self._validators:
            schema = (self.tool_specs.get(key) or {}).get("input_schema")
            try:
                text = json.dumps(schema, sort_keys=True)
            except (TypeError, ValueError, RecursionError):
                text = "null"
            self._validators[key] = _compiled(text)
        return self._validators[key]

    def check(self, sid: str, pool: str, tool: str, arguments: dict[str, Any]) -> None:
        validator = self._validator(pool, tool)
        if validator is None:
            return
        try:
            found = [e for e in validator.iter_errors(arguments) if not _through_placeholder(arguments, e)]
        except (referencing.exceptions.Unresolvable, RecursionError):
            return  # the tool's schema cannot be applied (an unresolvable $ref): the agent checks for itself
        if found:
            # an unknown name first: a misspelling also makes the intended argument look missing
            unknown = [e for e in found if e.validator == "additionalProperties"]
            worst = unknown[0] if unknown else jsonschema.exceptions.best_match(found)
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise errors.InvalidArgument(f"subtask {sid!r}: {_describe_error(worst, tool)}{more}")


@functools.lru_cache(maxsize=256)  # one compile per schema and process, not one per plan
def _compiled(schema_json: str) -> Any:
    """A validator for a tool's input schema (given as JSON), closed to unknown names; None when unusable."""
    schema = bounded_schema(json.loads(schema_json))
    if schema is None:
        return None
    schema = closed(schema)
    return jsonschema.validators.validator_for(schema)(schema)


def _through_placeholder(arguments: Any, error: jsonschema.ValidationError) -> bool:
    """Whether the error is about a ``$from`` placeholder or something inside one (values not known yet)."""
    value = arguments
    for step in [*error.absolute_path, None]:
        if isinstance(value, dict) and "$from" in value:
            return True
        if step is None:
            return False
        value = value[step]
    return False


def _describe_error(error: jsonschema.ValidationError, tool: str) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        unknown = [k for k in error.instance if k not in known]
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        hint = difflib.get_close_matches(unknown[0], known, n=1)
        expected = f"did you mean {hint[0]!r}? expected one of: " if hint else "expected one of: "
        return f"argument {name!r} is not accepted by {tool} ({expected}{', '.join(known) or 'no arguments'})"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        name = f"{where}.{missing}" if where else missing
        return f"argument {name!r} is required by {tool}"
    got = json.dumps(error.instance)[:80]
    if error.validator == "type":
        expected = error.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return f"argument {where!r} must be {wanted}, got {got}"
    return f"argument {where or '(all arguments)'!r} is not valid for {tool}: {error.message[:200]}"


# ---------------------------------------------------------------- references


def check_placeholders(sid: str, value: Any) -> int:
    """The number of ``$from`` placeholders in ``value``; a malformed one is a BadReference naming it."""
    if isinstance(value, list):
        return sum(check_placeholders(sid, v) for v in value)
    if not isinstance(value, dict):
        return 0
    if "$from" not in value:
        return sum(check_placeholders(sid, v) for v in value.values())
    extra = sorted(value.keys() - PLACEHOLDER_KEYS)
    path = value.get("path", "")
    if extra:
        raise errors.BadReference(f'subtask {sid!r}: a $from placeholder takes only "$from" and "path", not {extra}')
    if not isinstance(value["$from"], str) or not isinstance(path, str):
        raise errors.BadReference(f'subtask {sid!r}: "$from" and "path" must be strings, got {json.dumps(value)}')
    for step in path.split(".") if path else []:
        if not STEP.fullmatch(step):
            raise errors.BadReference(
                f"subtask {sid!r}: $from path {path!r} has a bad step {step!r} (a key, or an index like 0 or -1)"
            )
    return 1


def references(value: Any) -> Iterator[str]:
    """Ids named by ``{"$from": ...}`` placeholders anywhere inside ``value``."""
    if isinstance(value, dict):
        if "$from" in value:
            yield str(value["$from"])
            return
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def resolve_references(value: Any, outputs: Mapping[str, Any], max_bytes: int | None = None) -> Any:
    """``value`` with every placeholder replaced by the named part of a dependency's output. With
    ``max_bytes``, a result whose JSON would be larger is a LimitExceeded, found before it is built."""
    if max_bytes is not None:
        size = resolved_size(value, outputs, {})
        if size > max_bytes:
            raise errors.LimitExceeded(
                f"arguments would be {size} bytes once $from values are filled in; the limit "
                f"(max_resolved_argument_bytes) is {max_bytes}"
            )
    return _resolve(value, outputs)


def _resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        if "$from" in value:
            return _lookup(value, outputs)
        return {k: _resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, outputs) for v in value]
    return value


def _lookup(placeholder: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    source = str(placeholder["$from"])
    if source not in outputs:
        raise errors.BadReference(f"output of {source!r} is not available")
    output = outputs[source]
    if payload.is_truncated(output):
        raise errors.BadReference(
            f"output of {source!r} was over max_result_bytes and only a preview was kept; it cannot be passed on"
        )
    return extract(output, str(placeholder.get("path", "")), source)


def resolved_size(value: Any, outputs: Mapping[str, Any], sizes: dict[tuple[str, str], int]) -> int:
    """Bytes of ``value``'s compact JSON once resolved, without building it: each distinct placeholder is
    measured once (``sizes`` remembers), however often it is repeated."""
    if isinstance(value, dict):
        if "$from" in value:
            key = (str(value["$from"]), str(value.get("path", "")))
            if key not in sizes:
                sizes[key] = len(json.dumps(_lookup(value, outputs), separators=(",", ":")))
            return sizes[key]
        inner = sum(len(json.dumps(str(k))) + 1 + resolved_size(v, outputs, sizes) for k, v in value.items())
        return 2 + inner + max(len(value) - 1, 0)
    if isinstance(value, list):
        return 2 + sum(resolved_size(v, outputs, sizes) for v in value) + max(len(value) - 1, 0)
    return len(json.dumps(value))


def extract(output: Any, path: str, source: str) -> Any:
    """Follow a dotted path (``a.b.0``, ``items.-1``) into ``output``; a step that finds nothing is a
    BadReference naming the path and what was there."""
    current = output
    for step in path.split(".") if path else []:
        if isinstance(current, dict) and step in current:
            current = current[step]
        elif isinstance(current, list) and re.fullmatch(r"-?\d+", step) and -len(current) <= int(step) < len(current):
            current = current[int(step)]
        else:
            raise errors.BadReference(
                f"output of {source!r} has no {path!r} (stopped at {step!r}, where there is {_shape(current)})"
            )
    return current


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:10]) + (", ..." if len(value) > 10 else "")
        return f"an object with keys {keys}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return "null" if value is None else f"a {type(value).__name__.replace('str', 'string')}"


def is_destructive(spec: Mapping[str, Any]) -> bool:
    """True unless the tool's annotations say it is read-only or not destructive (MCP's defaults otherwise)."""
    hints = spec.get("annotations") or {}
    if hints.get("readOnlyHint") is True:
        return False
    return hints.get("destructiveHint", True) is not False
