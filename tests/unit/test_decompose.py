"""The planners never pick a destructive tool unasked: the router leaves it out with a note, a sampled
plan that uses one is refused, and the registry keeps the annotations the decision reads."""

from __future__ import annotations

import json

import mcp_types as types
import pytest

from agents.runtime.annotations import DISRUPT, READ
from reynolds import errors
from reynolds.decompose import asks_for, is_destructive, plan_from_goal, route, sampling_messages
from reynolds.registry import Replica

SCHEMA = {"type": "object", "properties": {"container": {"type": "string"}}, "required": []}


def spec(description: str, hints: types.ToolAnnotations | None) -> dict:
    annotations = hints.model_dump(by_alias=True, exclude_none=True) if hints else {}
    return {"description": description, "input_schema": SCHEMA, "annotations": annotations}


SPECS = {
    ("docker", "docker_restart"): spec("Restart one container.", DISRUPT),
    ("docker", "docker_health"): spec("Health of one container.", READ),
}


def test_destructive_means_what_mcp_defaults_say() -> None:
    assert is_destructive(SPECS[("docker", "docker_restart")])
    assert not is_destructive(SPECS[("docker", "docker_health")])
    assert is_destructive({"description": "unannotated external tool"})  # spec defaults: destructive
    assert not is_destructive({"annotations": {"readOnlyHint": False, "destructiveHint": False}})


def test_the_router_leaves_a_destructive_tool_out_unless_the_goal_names_it() -> None:
    plan, notes = route("check the health of the docker container web", SPECS)
    assert [s.tool for s in plan.subtasks] == ["docker_health"]
    assert any("docker_restart left out" in n and "name it in the goal" in n for n in notes)
    plan, _ = route("restart the docker container web", SPECS)
    assert "docker_restart" in [s.tool for s in plan.subtasks]
    assert asks_for("please run docker_restart on web", "docker_restart")


def test_only_a_destructive_match_is_a_plan_error_that_says_why() -> None:
    with pytest.raises(errors.PlanError, match="docker_restart left out"):
        route("docker status of web", {("docker", "docker_restart"): SPECS[("docker", "docker_restart")]})


def test_a_sampled_plan_with_an_unasked_destructive_tool_is_refused() -> None:
    draft = json.dumps({"subtasks": [{"id": "r", "tool": "docker_restart", "arguments": {"container": "web"}}]})
    with pytest.raises(errors.PlanError, match="goal does not ask for it"):
        plan_from_goal("is the web container healthy?", SPECS, draft, None)
    plan, planning = plan_from_goal("docker_restart web", SPECS, draft, None)
    assert plan.subtasks[0].tool == "docker_restart" and planning.planner == "sampling"


def test_the_llm_is_told_which_tools_are_destructive() -> None:
    text = sampling_messages("anything", SPECS)[0].content.text
    assert '"docker_restart" (pool docker) [destructive]' in text
    assert '"docker_health" (pool docker):' in text


def test_the_registry_keeps_the_annotations() -> None:
    replica = Replica("a", "docker", "docker", "http://x/mcp", 1, [])
    replica.learn([types.Tool(name="docker_restart", input_schema=SCHEMA, annotations=DISRUPT)])
    assert replica.specs["docker_restart"]["annotations"]["destructiveHint"] is True
    assert is_destructive(replica.specs["docker_restart"])


PATH_SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
STEPS = {
    ("code", "lint_python"): {
        "description": "Lint Python code.",
        "input_schema": PATH_SCHEMA,
        "annotations": {"readOnlyHint": True},
    },
    ("code", "format_python"): {
        "description": "Format Python code.",
        "input_schema": PATH_SCHEMA,
        "annotations": {"readOnlyHint": False, "destructiveHint": False},
    },
    ("devops", "scan_secrets"): {
        "description": "Scan for secrets.",
        "input_schema": PATH_SCHEMA,
        "annotations": {"readOnlyHint": True},
    },
}


@pytest.mark.parametrize(
    ("goal", "edges"),
    [
        ("lint python in src/ then format python files", {"format_python": ["lint_python"]}),
        (
            "scan secrets, then lint python, followed by format python",
            {"lint_python": ["scan_secrets"], "format_python": ["lint_python"]},
        ),
        ("scan secrets and lint python; after that format python", {"format_python": ["lint_python", "scan_secrets"]}),
        ("format python and lint python in src", {}),  # no ordering words: independent calls
    ],
)
def test_the_router_reads_ordering_words_into_dependencies(goal: str, edges: dict[str, list[str]]) -> None:
    plan, _ = route(goal, STEPS)
    got = {s.id: sorted(s.depends_on) for s in plan.subtasks if s.depends_on}
    assert got == {k: sorted(v) for k, v in edges.items()}
