"""The shared YAML reader: line numbers, and alias bombs, recursive anchors and deep nesting refused fast."""

from __future__ import annotations

from agents.devops import yamlmap

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_lines_of_keys_and_items() -> None:
    data, lines = yamlmap.load("services:\n  web:\n    ports:\n      - 80:80\n")
    assert data == {"services": {"web": {"ports": ["80:80"]}}}
    assert lines.line("services", "web", "ports", 0) == 4
    assert lines.line("services", "web", "nothing", "here") == 2


def test_an_alias_bomb_is_a_problem_not_a_walk() -> None:
    assert len(BOMB) < 500
    problem = yamlmap.load(BOMB)
    assert isinstance(problem, yamlmap.YamlProblem) and "alias bomb" in problem.message


def test_shared_anchors_below_the_bound_are_fine() -> None:
    data, _ = yamlmap.load("x: &a {k: 1}\ny: *a\nz: {<<: *a, j: 2}\n")
    assert data == {"x": {"k": 1}, "y": {"k": 1}, "z": {"k": 1, "j": 2}}


def test_recursive_anchor_and_deep_nesting() -> None:
    recursive = yamlmap.load("a: &x\n  b: *x\n")
    assert isinstance(recursive, yamlmap.YamlProblem) and "recursive anchor" in recursive.message
    assert recursive.line == 1
    deep = yamlmap.load("[" * 5000 + "]" * 5000)
    assert isinstance(deep, yamlmap.YamlProblem) and "nested too deeply" in deep.message
