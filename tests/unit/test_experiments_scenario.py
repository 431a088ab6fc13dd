"""Scenario files are hostile input: every mistake gets an error naming the field, and nothing explodes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reynolds import errors
from reynolds.experiments.scenario import MAX_SCENARIO_BYTES, Generated, parse, read_file

REPO = Path(__file__).resolve().parents[2]
GOOD = """
name: small
workload:
  generate: {component_count: 4, interdependency_ratio: 0.5, duration: {distribution: uniform, low: 0.1, high: 0.3}}
strategies: [sequential, parallel, "hybrid:2"]
repetitions: 3
hypothesis:
  statement: parallel is faster
  claims: [{metric: makespan_s, strategy: parallel, direction: lower, than: sequential}]
"""


def test_a_good_scenario_parses() -> None:
    s = parse(GOOD)
    assert s.strategies == ["sequential", "parallel", "hybrid:2"] and s.repetitions == 3
    assert len(s.workload.resolve().subtasks) == 4


@pytest.mark.parametrize("name", ["generated-dag.yaml", "deployment-strategies.yaml", "routing.yaml"])
def test_the_shipped_scenarios_parse(name: str) -> None:
    parse(read_file(REPO / "experiments", name))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"repetitions": "many"}, "repetitions"),
        ({"repetitions": 10_000}, "repetitions"),
        ({"strategies": ["parallel", "warp-speed"]}, "strategies.1"),
        ({"strategies": ["parallel", "parallel"]}, "strategies"),
        ({"strategies": ["parallel", "hybrid:0"]}, "strategies.1"),
        ({"strategies": ["parallel", "pool:Not A Pool"]}, "strategies.1"),
        ({"strategies": ["parallel", "replicas:code=51"]}, "at most 50 replicas"),
        ({"workload": {"generate": {"component_count": 3, "pools": {"Bad Pool": 1}}}}, "workload.generate.pools"),
        ({"workload": {"generate": {"component_count": 3, "pools": {"alpha": 0}}}}, "pools.alpha"),
        ({"significance": 2}, "significance"),
        ({"workload": {}}, "workload"),
        ({"workload": {"generate": {"component_count": 10**6}}}, "workload.generate.component_count"),
        ({"workload": {"generate": {"component_count": 3, "duration": {"seconds": -1}}}}, "duration.seconds"),
        ({"workload": {"plan": {"subtasks": [{"id": "a", "tool": "sleep", "argumnts": {}}]}}}, "argumnts"),
        ({"colour": "blue"}, "colour"),
        ({"metrics": ["happiness"]}, "metrics.0"),
    ],
)
def test_a_wrong_field_is_named(change: dict, field: str) -> None:
    data = {**yaml.safe_load(GOOD), **change}
    with pytest.raises(errors.InvalidRequest, match=field.replace(".", r"\.")):
        parse(data)


def test_a_claim_naming_an_absent_strategy_is_refused() -> None:
    data = yaml.safe_load(GOOD)
    data["hypothesis"]["claims"][0]["than"] = "hybrid:7"
    with pytest.raises(errors.InvalidRequest, match=r"hypothesis\.claims\.0 names strategy 'hybrid:7'"):
        parse(data)


def test_too_many_runs_are_refused() -> None:
    data = {
        **yaml.safe_load(GOOD),
        "repetitions": 50,
        "strategies": ["sequential", "parallel", "hybrid:2", "hybrid:3", "hybrid:4"],
    }
    with pytest.raises(errors.InvalidRequest, match="strategies x repetitions is 250"):
        parse(data)


def test_a_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(errors.InvalidRequest, match="anchors and aliases are not allowed"):
        parse(bomb)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_00 + "]" * 100_00, "nested too deeply|not valid YAML"),
        ("name: [unclosed", "not valid YAML"),
        ("- just\n- a list", "must be a mapping"),
        ("x" * (MAX_SCENARIO_BYTES + 1), "over"),
        ("!!python/object/apply:os.system ['true']", "not valid YAML"),
    ],
)
def test_broken_text_gets_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        parse(text)


@pytest.mark.parametrize("name", ["../pyproject.toml", "/etc/passwd", "sub/x.yaml", "x.json", ".hidden.yaml"])
def test_a_file_name_must_be_a_bare_yaml_name(name: str, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidRequest, match=r"bare \.yaml"):
        read_file(tmp_path, name)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match=r"no scenario file 'nope\.yaml'"):
        read_file(tmp_path, "nope.yaml")


def test_a_generated_dag_is_deterministic_and_acyclic() -> None:
    g = Generated(component_count=30, interdependency_ratio=0.3, max_dependencies=2, seed=7)
    first, again = g.plan(), g.plan()
    assert first == again
    for i, s in enumerate(first.subtasks):
        assert len(s.depends_on) <= 2 and all(int(d[1:]) < i for d in s.depends_on)
    assert any(s.depends_on for s in first.subtasks)
    assert Generated(component_count=5, interdependency_ratio=0).plan().subtasks[4].depends_on == []


def test_generated_durations_follow_the_distribution() -> None:
    g = Generated.model_validate(
        {"component_count": 200, "duration": {"distribution": "exponential", "seconds": 0.5}, "seed": 3}
    )
    seconds = [s.arguments["seconds"] for s in g.plan().subtasks]
    assert all(0 <= x <= 60 for x in seconds)
    assert 0.35 < sum(seconds) / len(seconds) < 0.65


def test_a_generated_demand_mix_draws_each_component_onto_a_pool_by_weight() -> None:
    g = Generated.model_validate({"component_count": 200, "pools": {"alpha": 3, "beta": 1}, "seed": 5})
    pools = [s.pool for s in g.plan().subtasks]
    assert pools == [s.pool for s in g.plan().subtasks]  # same seed, same mix
    assert set(pools) == {"alpha", "beta"} and 0.65 < pools.count("alpha") / 200 < 0.85
    assert all(s.pool is None for s in Generated(component_count=3).plan().subtasks)  # the tool's own pool
