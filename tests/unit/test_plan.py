"""Plan validation (ids, dependencies, cycles, tools, limits, references) and scheduling order (rank,
levels, critical path, strategies)."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from reynolds import errors
from reynolds.models import Plan, PlanView
from reynolds.payload import safe_output
from reynolds.plan import (
    bounded_schema,
    build_plan,
    extract,
    references,
    resolve_references,
    resolved_size,
)

CATALOG = {
    "echo": {"workbench"},
    "sleep": {"workbench"},
    "lint": {"code"},
    "scan": {"devops", "code"},  # offered by two pools
}
LIMITS = {"max_subtasks": 100, "max_depth": 50, "max_argument_bytes": 10_000}


def node(sid: str, *deps: str, tool: str = "echo", **extra: Any) -> dict[str, Any]:
    return {"id": sid, "tool": tool, "depends_on": list(deps), **extra}


def build(*subtasks: dict[str, Any], catalog=CATALOG, **kwargs: Any) -> PlanView:
    options = {**LIMITS, **kwargs}
    return build_plan(Plan.model_validate({"subtasks": list(subtasks)}), catalog, **options)


def cycle_in(message: str) -> list[str]:
    """The ids of the cycle named in a CycleError message ("... : a -> b -> a")."""
    return message.rsplit(": ", 1)[1].split(" -> ")


def deps_of(view: PlanView) -> dict[str, list[str]]:
    return {s.id: s.depends_on for s in view.subtasks}


# ---------------------------------------------------------------- structure


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(errors.DuplicateSubtask, match="'a' is used more than once"):
        build(node("a"), node("b"), node("a"))


def test_unknown_dependency_is_named() -> None:
    with pytest.raises(errors.UnknownDependency, match="'b' depends on 'ghost', which is not in the plan"):
        build(node("a"), node("b", "ghost"))


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(errors.CycleError, match="'a' depends on itself"):
        build(node("a", "a"))


def test_three_cycle_is_named_in_order() -> None:
    with pytest.raises(errors.CycleError) as caught:
        build(node("a", "c"), node("b", "a"), node("c", "b"))
    cycle = cycle_in(str(caught.value))
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    deps = {"a": "c", "b": "a", "c": "b"}
    for here, there in itertools.pairwise(cycle):
        assert deps[here] == there, f"{here} does not depend on {there} in {cycle}"


def test_cycle_behind_an_acyclic_prefix_names_only_the_cycle() -> None:
    # "tail" hangs off the cycle and is listed first, so the search starts outside the cycle
    plan = [
        node("tail", "b"),
        node("root"),
        node("a", "root"),
        node("b", "a", "d"),
        node("c", "b"),
        node("d", "c"),
    ]
    with pytest.raises(errors.CycleError) as caught:
        build(*plan)
    cycle = cycle_in(str(caught.value))
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["b", "c", "d"]
    assert "tail" not in cycle and "root" not in cycle and "a" not in cycle


def test_a_plan_without_cycles_passes_and_keeps_plan_order_among_equals() -> None:
    view = build(node("z"), node("y"), node("x", "z", "y"))
    assert [s.id for s in view.subtasks] == ["z", "y", "x"]


# ---------------------------------------------------------------- tools and pools


def test_unknown_tool_is_refused() -> None:
    with pytest.raises(errors.UnknownTool, match="no registered pool offers tool 'nope'"):
        build(node("a", tool="nope"))


def test_tool_in_two_pools_needs_a_pool() -> None:
    with pytest.raises(errors.AmbiguousTool, match='offered by pools code, devops; set "pool"'):
        build(node("a", tool="scan"))


def test_explicit_pool_picks_among_several() -> None:
    view = build(node("a", tool="scan", pool="devops"))
    assert view.subtasks[0].pool == "devops"


def test_explicit_wrong_pool_names_the_right_one() -> None:
    with pytest.raises(errors.UnknownTool, match="pool 'workbench' has no tool 'lint'; it is offered by code"):
        build(node("a", tool="lint", pool="workbench"))


def test_pool_is_found_from_the_tool() -> None:
    view = build(node("a", tool="lint"), node("b", "a"))
    assert {s.id: s.pool for s in view.subtasks} == {"a": "code", "b": "workbench"}


# ---------------------------------------------------------------- limits


def test_max_subtasks_is_named() -> None:
    with pytest.raises(errors.LimitExceeded, match=r"3 subtasks; the limit \(max_subtasks\) is 2"):
        build(node("a"), node("b"), node("c"), max_subtasks=2)
    assert len(build(node("a"), node("b"), max_subtasks=2).subtasks) == 2


def test_max_depth_is_named() -> None:
    chain = [node("s0")] + [node(f"s{i}", f"s{i - 1}") for i in range(1, 4)]
    with pytest.raises(errors.LimitExceeded, match=r"4 subtasks deep; the limit \(max_depth\) is 3"):
        build(*chain, max_depth=3)
    assert len(build(*chain, max_depth=4).levels) == 4


def test_max_argument_bytes_is_named() -> None:
    big = node("big", arguments={"value": "x" * 200})
    with pytest.raises(errors.LimitExceeded, match=r"arguments of subtask 'big' are \d+ bytes.*\(max_argument_bytes\)"):
        build(big, max_argument_bytes=100)
    build(big, max_argument_bytes=1000)


# ---------------------------------------------------------------- references


def test_from_reference_adds_a_dependency() -> None:
    view = build(
        node("src"),
        node("dst", arguments={"outer": {"items": [1, {"$from": "src", "path": "value"}]}}),
    )
    assert deps_of(view)["dst"] == ["src"]
    assert view.levels == [["src"], ["dst"]]


def test_from_reference_does_not_duplicate_an_explicit_dependency() -> None:
    view = build(node("src"), node("dst", "src", arguments={"v": {"$from": "src"}}))
    assert deps_of(view)["dst"] == ["src"]


def test_reference_to_an_id_not_in_the_plan_is_refused() -> None:
    with pytest.raises(errors.BadReference, match="'dst' reads from 'ghost', which is not in the plan"):
        build(node("dst", arguments={"v": [{"$from": "ghost"}]}))


def test_references_finds_placeholders_at_any_depth() -> None:
    value = {"a": {"$from": "x"}, "b": [{"c": {"$from": "y", "path": "z"}}, 3], "d": "plain"}
    assert sorted(references(value)) == ["x", "y"]


def test_resolve_references_in_nested_dicts_and_lists() -> None:
    outputs = {
        "scan": {"summary": "2 findings", "findings": [{"file": "a.py"}, {"file": "b.py"}, {"file": "c.py"}]},
        "lint": {"counts": {"E": 3}},
    }
    value = {
        "title": "Findings",
        "body": {"$from": "scan", "path": "summary"},
        "nested": {"list": [{"$from": "lint", "path": "counts.E"}, "literal", 7]},
        "first": {"$from": "scan", "path": "findings.0.file"},
        "last": {"$from": "scan", "path": "findings.-1.file"},
        "whole": {"$from": "lint"},
    }
    assert resolve_references(value, outputs) == {
        "title": "Findings",
        "body": "2 findings",
        "nested": {"list": [3, "literal", 7]},
        "first": "a.py",
        "last": "c.py",
        "whole": {"counts": {"E": 3}},
    }


def test_extract_follows_list_indices_including_negative() -> None:
    data = {"rows": [[1, 2], [3, 4], [5, 6]]}
    assert extract(data, "rows.1.0", "s") == 3
    assert extract(data, "rows.-1.-2", "s") == 5
    assert extract(data, "rows.-3", "s") == [1, 2]
    assert extract(data, "", "s") is data


@pytest.mark.parametrize(
    ("path", "stopped_at", "found"),
    [
        ("missing", "missing", "an object with keys name, rows"),
        ("rows.3", "3", "a list of 3 items"),
        ("rows.-4", "-4", "a list of 3 items"),
        ("rows.first", "first", "a list of 3 items"),
        ("rows.--1", "--1", "a list of 3 items"),
        ("rows.0.0.deeper", "deeper", "a int"),
        ("name.0", "0", "a string"),
    ],
)
def test_extract_errors_say_where_they_stopped_and_what_was_there(path: str, stopped_at: str, found: str) -> None:
    data = {"rows": [[1, 2], [3, 4], [5, 6]], "name": "text"}
    expected = f"output of 'src' has no {path!r} (stopped at {stopped_at!r}, where there is {found})"
    with pytest.raises(errors.BadReference, match=re.escape(expected)):
        extract(data, path, "src")


@pytest.mark.parametrize(
    ("placeholder", "fragment"),
    [
        ({"$from": "src", "path": "rows.--1"}, "bad step '--1'"),
        ({"$from": "src", "path": "a..b"}, "bad step ''"),
        ({"$from": "src", "path": 3}, "must be strings"),
        ({"$from": ["src"]}, "must be strings"),
        ({"$from": "src", "pth": "a"}, "not ['pth']"),
    ],
)
def test_malformed_placeholders_are_refused_at_submit(placeholder: dict[str, Any], fragment: str) -> None:
    with pytest.raises(errors.BadReference, match=re.escape(fragment)):
        build(node("src"), node("dst", arguments={"v": placeholder}))


def test_a_missing_or_truncated_source_is_a_bad_reference() -> None:
    with pytest.raises(errors.BadReference, match="output of 'gone' is not available"):
        resolve_references({"v": {"$from": "gone"}}, {})
    big, _ = safe_output("x" * 100, max_bytes=10)
    with pytest.raises(errors.BadReference, match="only a preview was kept"):
        resolve_references({"v": {"$from": "big", "path": "preview"}}, {"big": big})


# ---------------------------------------------------------------- resolved size


def test_resolved_size_is_exact_without_building_the_value() -> None:
    outputs = {"a": {"text": "é" * 10, "n": [1, 2.5, None, True]}, "b": "plain"}
    value = {"x": [{"$from": "a"}, {"$from": "a", "path": "n"}, "lit", 7], "y": {"$from": "b"}, "z": {}, "w": []}
    resolved = resolve_references(value, outputs)
    assert resolved_size(value, outputs, {}) == len(json.dumps(resolved, separators=(",", ":")))


def test_repeated_references_over_the_cap_fail_before_they_are_built() -> None:
    outputs = {"src": {"blob": "x" * 10_000}}
    fan_in = {"items": [{"$from": "src", "path": "blob"}] * 1000}  # 14 KB of plan, 10 MB resolved
    with pytest.raises(errors.LimitExceeded, match=r"10\d{6} bytes .*\(max_resolved_argument_bytes\) is 1000000"):
        resolve_references(fan_in, outputs, max_bytes=1_000_000)
    assert len(resolve_references(fan_in, outputs, max_bytes=20_000_000)["items"]) == 1000


def test_fan_in_past_the_worst_case_is_refused_at_submit() -> None:
    reads = [{"$from": f"s{i}"} for i in range(5)]
    plan = [node(f"s{i}") for i in range(5)] + [node("join", arguments={"all": reads})]
    with pytest.raises(errors.LimitExceeded, match=r"'join' reads 5 \$from values .*max_resolved_argument_bytes"):
        build(*plan, max_result_bytes=1000, max_resolved_argument_bytes=4000)
    build(*plan, max_result_bytes=1000, max_resolved_argument_bytes=6000)


# ---------------------------------------------------------------- input schemas

LINT_SCHEMA = {  # what MCPServer generates: properties named, nothing said about others
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "select": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "integer"},
        "options": {"$ref": "#/$defs/Options"},
    },
    "required": ["path"],
    "$defs": {"Options": {"type": "object", "properties": {"fix": {"type": "boolean"}}}},
}
SPECS = {("code", "lint"): {"input_schema": LINT_SCHEMA}, ("workbench", "echo"): {"input_schema": {"type": "object"}}}


def lint(**arguments: Any) -> dict[str, Any]:
    return node("lint", tool="lint", arguments=arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"pth": "src"},
            "subtask 'lint': argument 'pth' is not accepted by lint (did you mean 'path'? expected one of: limit, "
            "options, path, select)",
        ),
        ({"path": "src", "limit": "ten"}, "subtask 'lint': argument 'limit' must be integer, got \"ten\""),
        ({"select": ["E"]}, "subtask 'lint': argument 'path' is required by lint"),
        ({"path": "src", "select": ["E", 5]}, "argument 'select.1' must be string, got 5"),
        ({"path": "src", "options": {"fxi": True}}, "argument 'options.fxi' is not accepted by lint"),
    ],
)
def test_arguments_the_schema_refuses_name_subtask_field_and_expectation(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(errors.InvalidArgument, match=re.escape(message)):
        build(lint(**arguments), tool_specs=SPECS)


def test_arguments_the_schema_accepts_pass() -> None:
    build(lint(path="src", select=["E"], limit=3, options={"fix": True}), tool_specs=SPECS)
    build(node("e", arguments={"anything": 1}), tool_specs=SPECS)  # a schema without properties stays open


def test_a_schema_that_allows_extra_arguments_keeps_them() -> None:
    open_schema = {**LINT_SCHEMA, "additionalProperties": True}
    build(lint(path="src", extra=1), tool_specs={("code", "lint"): {"input_schema": open_schema}})
    typed = {**LINT_SCHEMA, "additionalProperties": {"type": "integer"}}
    with pytest.raises(errors.InvalidArgument, match="argument 'extra' must be integer"):
        build(lint(path="src", extra="x"), tool_specs={("code", "lint"): {"input_schema": typed}})


def test_placeholders_are_accepted_wherever_a_value_goes() -> None:
    view = build(
        node("src"),
        lint(path={"$from": "src", "path": "value"}, limit={"$from": "src"}, select=[{"$from": "src"}]),
        tool_specs=SPECS,
    )
    assert deps_of(view)["lint"] == ["src"]
    with pytest.raises(errors.InvalidArgument, match="'pth' is not accepted"):  # names are still checked
        build(node("src"), lint(path="a", pth={"$from": "src"}), tool_specs=SPECS)


def test_all_of_parts_are_not_closed() -> None:
    schema = {"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}
    build(node("e", arguments={"a": 1, "b": 2}), tool_specs={("workbench", "echo"): {"input_schema": schema}})


@pytest.mark.parametrize(
    "schema",
    [None, "not a schema", {"type": 12}, {"properties": {"x": {"type": "string"}}, "description": "y" * 70_000}],
)
def test_unusable_schemas_are_not_kept(schema: Any) -> None:
    assert bounded_schema(schema) is None
    build(node("e", arguments={"x": 1}), tool_specs={("workbench", "echo"): {"input_schema": schema}})


def test_a_schema_with_an_unresolvable_ref_leaves_arguments_to_the_agent() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/s.json"}}}
    build(node("e", arguments={"x": 1}), tool_specs={("workbench", "echo"): {"input_schema": schema}})


@pytest.mark.parametrize("bad", ["a\x00b", "lone \udcff"])
def test_unstorable_characters_in_arguments_are_refused(bad: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=r"argument 'v\.1' holds a NUL or unpaired surrogate"):
        build(node("e", arguments={"v": ["ok", bad]}))


# ---------------------------------------------------------------- rank, levels, critical path


def slow_estimates(pool: str, tool: str) -> float:
    return {"sleep": 10.0, "echo": 1.0, "lint": 2.0}[tool]


def test_rank_is_the_longest_remaining_path_with_estimates() -> None:
    #   quick(echo,1) ─┐
    #                  ├─> join(echo,1) -> end(lint,2)
    #   slow(sleep,10)─┘
    #   side(lint,2)  (independent)
    view = build(
        node("quick"),
        node("slow", tool="sleep"),
        node("join", "quick", "slow"),
        node("end", "join", tool="lint"),
        node("side", tool="lint"),
        estimate=slow_estimates,
    )
    rank = {s.id: s.rank for s in view.subtasks}
    assert rank == {"quick": 4.0, "slow": 13.0, "join": 3.0, "end": 2.0, "side": 2.0}
    assert view.critical_path == ["slow", "join", "end"]
    assert view.levels == [["quick", "slow", "side"], ["join"], ["end"]]
    assert view.strategy == "parallel"
    assert view.estimated_makespan_s == 13.0
    assert view.estimated_total_work_s == 16.0


def test_default_estimate_counts_subtasks() -> None:
    view = build(node("a"), node("b", "a"), node("c", "b"), node("d", "a"))
    assert view.critical_path == ["a", "b", "c"]
    assert view.estimated_makespan_s == 3.0
    assert view.estimated_total_work_s == 4.0


def test_estimates_are_floored_above_zero() -> None:
    view = build(node("a"), node("b", "a"), estimate=lambda pool, tool: 0.0)
    assert all(s.rank > 0 for s in view.subtasks)
    assert {s.id: s.rank for s in view.subtasks}["a"] > {s.id: s.rank for s in view.subtasks}["b"]


# ---------------------------------------------------------------- strategies


def sequence_of(view: PlanView) -> list[str]:
    """The one order a sequential plan allows: follow `after` or the single dependency that chains it."""
    gates = {s.id: set(s.after) | set(s.depends_on) for s in view.subtasks}
    order: list[str] = []
    remaining = set(gates)
    while remaining:
        runnable = [sid for sid in remaining if gates[sid] <= set(order)]
        assert len(runnable) == 1, f"sequential plan lets {sorted(runnable)} run at once after {order}"
        order.append(runnable[0])
        remaining.remove(runnable[0])
    return order


def test_sequential_chains_every_subtask_in_a_valid_topological_order() -> None:
    view = build(
        node("quick"),
        node("slow", tool="sleep"),
        node("join", "quick", "slow"),
        node("end", "join", tool="lint"),
        node("side", tool="lint"),
        strategy="sequential",
        estimate=slow_estimates,
    )
    order = sequence_of(view)
    position = {sid: i for i, sid in enumerate(order)}
    for s in view.subtasks:
        for dep in s.depends_on:
            assert position[dep] < position[s.id], f"{s.id} runs before its dependency {dep}"
        assert len(s.after) <= 1
    assert order[0] == "slow"  # the critical path starts first
    assert view.strategy == "sequential"
    assert view.estimated_makespan_s == view.estimated_total_work_s == 16.0


def test_sequential_does_not_add_after_where_a_dependency_already_orders() -> None:
    view = build(node("a"), node("b", "a"), node("c", "b"), strategy="sequential")
    assert all(s.after == [] for s in view.subtasks)


def test_parallel_adds_no_ordering_edges() -> None:
    view = build(node("a"), node("b"), node("c"), strategy="parallel")
    assert all(s.after == [] for s in view.subtasks)
    assert view.levels == [["a", "b", "c"]]


def test_auto_picks_sequential_for_a_chain() -> None:
    view = build(node("a"), node("b", "a"), node("c", "b"), strategy="auto")
    assert view.strategy == "sequential"


def test_auto_picks_parallel_for_a_wide_plan() -> None:
    view = build(*[node(f"w{i}") for i in range(8)], node("join", *[f"w{i}" for i in range(8)]), strategy="auto")
    assert view.strategy == "parallel"
    assert view.estimated_makespan_s == 2.0
    assert all(s.after == [] for s in view.subtasks)


# ---------------------------------------------------------------- size


def test_ten_thousand_subtasks_validate() -> None:
    # 100 chains of 100, each chain reading from its predecessor, plus a final join over every chain end
    subtasks = []
    for c in range(100):
        for i in range(100):
            args = {"v": {"$from": f"c{c}-{i - 1}", "path": "value"}} if i else {"v": c}
            subtasks.append({"id": f"c{c}-{i}", "tool": "echo", "arguments": args})
    subtasks[-1]["depends_on"] = [f"c{c}-99" for c in range(99)]
    view = build_plan(
        Plan.model_validate({"subtasks": subtasks}),
        CATALOG,
        max_subtasks=10_000,
        max_depth=200,
        max_argument_bytes=10_000,
    )
    assert len(view.subtasks) == 10_000
    assert len(view.levels) == 101  # the join waits for the other chains' last step
    assert len(view.critical_path) == 101
    assert view.critical_path[-1] == "c99-99"


# ---------------------------------------------------------------- approval
def test_approval_is_asked_for_or_comes_from_the_destructive_policy() -> None:
    specs = {
        ("workbench", "echo"): {"annotations": {"readOnlyHint": True}},
        ("workbench", "sleep"): {"annotations": {"destructiveHint": True}},
        ("code", "lint"): {},  # unannotated: MCP's defaults say destructive
    }
    subtasks = (node("e"), node("s", tool="sleep"), node("l", tool="lint"), node("asked", requires_approval=True))
    asked = {s.id: s.requires_approval for s in build(*subtasks, tool_specs=specs).subtasks}
    assert asked == {"e": False, "s": False, "l": False, "asked": True}
    policy = {s.id: s.requires_approval for s in build(*subtasks, tool_specs=specs, approve_destructive=True).subtasks}
    assert policy == {"e": False, "s": True, "l": True, "asked": True}
