"""Client log levels are per caller and session, bounded; events read as one short line each."""

from __future__ import annotations

from reynolds import client_log
from reynolds.client_log import DEFAULT_LEVEL, Levels, describe


def test_a_level_belongs_to_one_caller_and_session() -> None:
    levels = Levels()
    levels.set(("alice", "s1"), "error")
    assert levels.get(("alice", "s1")) == "error"
    assert levels.get(("bob", "s1")) == DEFAULT_LEVEL  # another tenant naming the same session id
    assert levels.get(("alice", "s2")) == DEFAULT_LEVEL


def test_the_oldest_levels_are_forgotten_past_the_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(client_log, "MAX_SESSIONS", 2)
    levels = Levels()
    for i in range(3):
        levels.set(("t", str(i)), "debug")
    assert [levels.get(("t", str(i))) for i in range(3)] == [DEFAULT_LEVEL, "debug", "debug"]


def test_events_read_as_one_bounded_line() -> None:
    line = describe("build", "subtask_failed", {"error": "boom", "agent_id": "a1"})
    assert line == "subtask build: subtask_failed (boom)"
    assert describe(None, "subtasks_skipped", {"ids": ["x"]}) == "task: subtasks_skipped (['x'])"
    assert describe(None, "task_succeeded", {}) == "task: task_succeeded"
    assert len(describe("s", "subtask_failed", {"error": "e" * 10_000})) < 400
