"""Strategy names and what they change: hybrid lanes cap concurrency with ordering-only edges, pool routing
puts every subtask on one pool, replica counts name a pool size; plan shapes ignore arguments."""

from __future__ import annotations

import pytest

from reynolds.experiments.strategies import StrategySpec, chain_lanes, parse_strategy, plan_shape, routed
from reynolds.models import Plan
from reynolds.plan import build_plan

CATALOG = {"sleep": {"workbench"}, "echo": {"workbench"}}


def view(plan: Plan, strategy: str = "parallel"):  # type: ignore[no-untyped-def]
    return build_plan(plan, CATALOG, max_subtasks=100, max_depth=100, max_argument_bytes=10_000, strategy=strategy)  # type: ignore[arg-type]


def wide(n: int) -> Plan:
    return Plan.model_validate({"subtasks": [{"id": f"s{i}", "tool": "sleep"} for i in range(n)]})


def test_parse_strategy() -> None:
    assert parse_strategy("hybrid:3") == StrategySpec("parallel", lanes=3)
    assert parse_strategy("sequential") == StrategySpec("sequential")
    assert parse_strategy("pool:general") == StrategySpec("parallel", pool="general")
    assert parse_strategy("replicas:code=3") == StrategySpec("parallel", replicas=("code", 3))
    assert parse_strategy("hybrid:2").learnable and not parse_strategy("pool:general").learnable
    assert not parse_strategy("replicas:code=3").learnable


@pytest.mark.parametrize("name", ["pool:", "pool:Bad Name", "replicas:code=0", "replicas:x", "replicas:x=51", "?"])
def test_unknown_or_out_of_bounds_strategies_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="strateg"):
        parse_strategy(name)


def test_pool_routing_moves_every_subtask_and_leaves_the_plan_alone() -> None:
    plan = Plan.model_validate(
        {"subtasks": [{"id": "a", "tool": "sleep", "pool": "alpha"}, {"id": "b", "tool": "echo"}]}
    )
    moved = routed(plan, parse_strategy("pool:general"))
    assert [s.pool for s in moved.subtasks] == ["general", "general"]
    assert [s.pool for s in plan.subtasks] == ["alpha", None]
    assert routed(plan, parse_strategy("parallel")) is plan


def test_lanes_deal_the_plan_round_robin() -> None:
    v = chain_lanes(view(wide(5)), 2)
    assert [s.after for s in v.subtasks] == [[], [], ["s0"], ["s1"], ["s2"]]
    # at most 2 subtasks are free to start at any time: exactly two start without waiting
    assert sum(not s.after and not s.depends_on for s in v.subtasks) == 2


def test_a_lane_edge_that_is_already_a_dependency_is_not_added() -> None:
    plan = Plan.model_validate(
        {
            "subtasks": [
                {"id": "a", "tool": "sleep"},
                {"id": "b", "tool": "sleep"},
                {"id": "c", "tool": "echo", "depends_on": ["a"]},
            ]
        }
    )
    v = chain_lanes(view(plan), 2)
    assert {s.id: s.after for s in v.subtasks} == {"a": [], "b": [], "c": []}


def test_no_lanes_or_sequential_leave_the_view_alone() -> None:
    assert all(not s.after for s in chain_lanes(view(wide(3)), None).subtasks)
    seq = view(wide(3), "sequential")
    before = [list(s.after) for s in seq.subtasks]
    assert [s.after for s in chain_lanes(seq, 2).subtasks] == before


def test_plan_shape_is_structure_not_arguments() -> None:
    a = Plan.model_validate(
        {
            "subtasks": [
                {"id": "x", "tool": "sleep", "arguments": {"seconds": 1}},
                {"id": "y", "tool": "echo", "depends_on": ["x"]},
            ]
        }
    )
    b = Plan.model_validate(
        {
            "subtasks": [
                {"id": "p", "tool": "sleep", "arguments": {"seconds": 9}},
                {"id": "q", "tool": "echo", "depends_on": ["p"]},
            ]
        }
    )
    c = Plan.model_validate({"subtasks": [{"id": "x", "tool": "sleep"}, {"id": "y", "tool": "echo"}]})
    ref = Plan.model_validate(
        {"subtasks": [{"id": "x", "tool": "sleep"}, {"id": "y", "tool": "echo", "arguments": {"v": {"$from": "x"}}}]}
    )
    assert plan_shape(a) == plan_shape(b) == plan_shape(ref) != plan_shape(c)
