"""The tool reply for a task: the full view as structured content and the same data as compact JSON text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from reynolds.models import SubtaskView, TaskView
from reynolds.server import reply


def test_text_is_the_structured_content_as_compact_json() -> None:
    view = TaskView(
        task_id="0b6a0b5e-9c43-4c1e-9f3b-1f0c2f1e8d11",
        state="succeeded",
        strategy="parallel",
        priority=0,
        created_at=datetime(2026, 12, 3, tzinfo=UTC),
        counts={"succeeded": 1},
        subtasks=[
            SubtaskView(
                id="e",
                tool="echo",
                pool="workbench",
                state="succeeded",
                depends_on=[],
                attempts=1,
                arguments={"value": "é\x00"},
                result={"value": "é\x00"},
            )
        ],
    )
    result = reply(view)
    (block,) = result.content
    assert json.loads(block.text) == result.structured_content
    assert result.structured_content == view.model_dump(mode="json", by_alias=True)
    assert "\n" not in block.text and ": " not in block.text  # compact, where the SDK would indent by two
    assert len(block.text) < len(view.model_dump_json(indent=2))
