"""Reynolds' closing words: a line chosen by outcome (stable per task), or the plain sentence alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from reynolds.models import SubtaskView, TaskView
from reynolds.personality import LINES, closing_message, plain

START = datetime(2025, 1, 1, tzinfo=UTC)


def view(state: str, task_id: str = "11111111-1111-1111-1111-111111111111", **extra: object) -> TaskView:
    values: dict[str, object] = {
        "task_id": task_id,
        "state": state,
        "created_at": START,
        "finished_at": START + timedelta(seconds=2.5),
        "duration_s": 2.5,
        "counts": {"succeeded": 3},
    }
    values.update(extra)
    return TaskView(**values)  # type: ignore[arg-type]


def sub(sid: str, state: str) -> SubtaskView:
    return SubtaskView(id=sid, tool="echo", pool="workbench", state=state, depends_on=[], attempts=1)


def test_off_gives_the_plain_sentence_alone() -> None:
    v = view("succeeded")
    assert closing_message(v, "off") == plain(v) == f"Task {v.task_id} succeeded: 3/3 subtasks done in 2.50 s."


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
def test_on_adds_a_line_for_the_outcome(state: str) -> None:
    v = view(state, counts={"succeeded": 1, "failed": 1} if state == "failed" else {"succeeded": 1})
    text = closing_message(v, "on")
    line = next((candidate for candidate in LINES[state] if text.startswith(candidate)), None)
    assert line is not None, f"{text!r} does not open with a {state} line"
    assert text == f"{line} {plain(v)}"
    others = [candidate for s, lines in LINES.items() if s != state for candidate in lines]
    assert not any(text.startswith(candidate) for candidate in others)


def test_the_line_is_stable_per_task_and_varies_across_tasks() -> None:
    v = view("succeeded")
    assert closing_message(v) == closing_message(view("succeeded"))
    lines = {closing_message(view("succeeded", task_id=str(uuid.UUID(int=i))))[:40] for i in range(50)}
    assert len(lines) > 1


def test_a_failure_names_failed_and_skipped_subtasks_and_the_reason() -> None:
    v = view(
        "failed",
        counts={"succeeded": 1, "failed": 2, "skipped": 3},
        subtasks=[sub("ok", "succeeded"), sub("lint", "failed"), sub("scan", "failed")],
        error="deadline passed",
    )
    assert plain(v) == f"Task {v.task_id} failed (deadline passed): 1/6 succeeded, failed: lint, scan, 3 skipped."


def test_a_cancellation_says_how_far_it_got() -> None:
    v = view("cancelled", counts={"succeeded": 2, "cancelled": 3})
    assert plain(v) == f"Task {v.task_id} was cancelled: 2/5 subtasks had finished."
