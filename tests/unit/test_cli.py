"""The CLI's task view: a table when the terminal is wide enough, one block per subtask when it is not."""

from __future__ import annotations

import pytest

from reynolds.cli import _print_task

TASK = {
    "task_id": "3f39a4fa-0ad6-44cb-9508-5e998f219a69",
    "state": "failed",
    "counts": {"succeeded": 1, "failed": 1},
    "subtasks": [
        {
            "id": "count",
            "tool": "count_lines",
            "pool": "code",
            "state": "succeeded",
            "attempts": 1,
            "agent_id": "code-local",
            "duration_s": 0.05,
            "result": {"summary": "412 code lines in 9 file(s)"},
        },
        {"id": "scan", "tool": "scan_secrets", "pool": "devops", "state": "failed", "attempts": 2, "error": "boom"},
    ],
    "message": "One of them tripped.",
}


@pytest.mark.parametrize("columns", [60, 80, 100, 200])
def test_every_subtask_result_is_visible_at_any_width(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    _print_task(TASK)
    out = capsys.readouterr().out
    assert all(len(line) <= columns for line in out.splitlines())
    for text in ("count_lines", "scan_secrets", "412 code lines", "boom", "One of them tripped."):
        assert text in out


def test_a_wide_terminal_gets_a_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    _print_task(TASK)
    assert "result / error" in capsys.readouterr().out
