"""The runner's pure parts: run order and the winner rule (the loop itself is tested in integration)."""

from __future__ import annotations

from reynolds.experiments.runner import run_goal, run_order, winner
from reynolds.experiments.scenario import parse

SCENARIO = parse("name: w\nworkload: {generate: {component_count: 2}}\nstrategies: [sequential, parallel]\n")


def test_strategies_are_interleaved_and_rotated() -> None:
    order = run_order(["a", "b", "c"], 3)
    assert order == [("a", 0), ("b", 0), ("c", 0), ("b", 1), ("c", 1), ("a", 1), ("c", 2), ("a", 2), ("b", 2)]
    assert all(sum(s == name for s, _ in order) == 3 for name in "abc")


def test_the_goal_names_the_run() -> None:
    assert run_goal("e1", 4, "hybrid:2") == "experiment e1 run 4 (hybrid:2)"


def by_metric(parallel: list[float], sequential: list[float], success_parallel: float = 1.0) -> dict:
    return {
        "makespan_s": {"sequential": sequential, "parallel": parallel},
        "success_rate": {"sequential": [1.0] * len(sequential), "parallel": [success_parallel] * len(parallel)},
    }


def test_a_significant_winner_is_remembered() -> None:
    w = winner(by_metric([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]), SCENARIO)
    assert w is not None and w["strategy"] == "parallel" and w["remembered"]


def test_a_winner_within_noise_is_not_remembered() -> None:
    w = winner(by_metric([1.0, 2.0, 1.5], [1.1, 1.9, 1.6]), SCENARIO)
    assert w is not None and not w["remembered"]


def test_a_faster_but_less_reliable_strategy_is_not_remembered() -> None:
    w = winner(by_metric([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], success_parallel=0.5), SCENARIO)
    assert w is not None and w["strategy"] == "parallel" and not w["remembered"]


def test_a_routing_or_replica_winner_is_reported_but_not_remembered() -> None:
    scenario = parse("name: w\nworkload: {generate: {component_count: 2}}\nstrategies: [parallel, 'pool:general']\n")
    samples = {
        "makespan_s": {"parallel": [2.0, 2.1, 1.9], "pool:general": [1.0, 1.1, 0.9]},
        "success_rate": {"parallel": [1.0] * 3, "pool:general": [1.0] * 3},
    }
    w = winner(samples, scenario)
    assert w is not None and w["strategy"] == "pool:general" and not w["remembered"]  # auto cannot apply it
