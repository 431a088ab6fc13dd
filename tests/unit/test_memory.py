"""The agent's outcome log: record and recall, failure signatures, and a torn last line after a crash."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agents.runtime.memory import MAX_SUMMARY, MEMORY_FILE, Memory, failure_signature


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    return Memory(tmp_path)


def test_recall_on_an_empty_memory_is_empty(memory: Memory) -> None:
    recall = memory.recall()
    assert recall.stats == [] and recall.matches == []


def test_record_then_recall_gives_stats_per_tool(memory: Memory) -> None:
    memory.record("lint", True, 1.0)
    memory.record("lint", False, 3.0, "file /src/a.py line 12: 'E501' too long")
    memory.record("lint", False, 2.0, "file /src/b/c.py line 99: 'F401' too long")
    memory.record("scan", True, 0.5, "")
    recall = memory.recall()
    lint, scan = recall.stats
    assert (lint.tool, lint.runs, lint.failures, lint.mean_duration_s) == ("lint", 3, 2, 2.0)
    assert lint.common_failures == [("file <path> line <n>: <v> too long", 2)]
    assert (scan.tool, scan.runs, scan.failures, scan.common_failures) == ("scan", 1, 0, [])
    assert [s.tool for s in memory.recall(tool="scan").stats] == ["scan"]


def test_matches_filter_by_words_newest_first_and_limited(memory: Memory) -> None:
    for i in range(5):
        memory.record("deploy", False, 0.1, f"timeout contacting registry attempt {i}")
    memory.record("deploy", True, 0.1, "done")
    found = memory.recall(query="Registry TIMEOUT", limit=3).matches
    assert [m.summary for m in found] == [f"timeout contacting registry attempt {i}" for i in (4, 3, 2)]
    assert [m.summary for m in memory.recall(query="deploy done").matches] == ["done"]


def test_summaries_are_capped(memory: Memory) -> None:
    memory.record("big", False, 0.1, "x" * 5000)
    [outcome] = memory.outcomes()
    assert len(outcome.summary) == MAX_SUMMARY


def test_successes_have_no_signature(memory: Memory) -> None:
    memory.record("ok", True, 0.1, "took 12 ms on /tmp/x")
    assert memory.outcomes()[0].signature == ""


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("connection to 10.0.0.5:5432 refused after 3 tries", "connection to 10.0.0.9:6543 refused after 12 tries"),
        ("cannot read /work/a/b.txt", "cannot read /srv/other/file.yaml"),
        ("unknown tool 'lint'", 'unknown tool "scan"'),
        ("took 1.25 s", "took 30 s"),
    ],
)
def test_failure_signatures_fold_variable_parts(first: str, second: str) -> None:
    assert failure_signature(first) == failure_signature(second)


def test_failure_signatures_keep_the_words() -> None:
    assert (
        failure_signature("cannot read /a/b.txt: 'x' missing after 3 s")
        == "cannot read <path>: <v> missing after <n> s"
    )
    assert failure_signature("disk full") != failure_signature("permission denied")
    assert len(failure_signature("word " * 100)) == 200


def test_a_torn_last_line_is_skipped(memory: Memory, tmp_path: Path) -> None:
    memory.record("a", True, 0.1)
    with (tmp_path / MEMORY_FILE).open("a") as f:
        f.write('{"ts": 1.0, "tool": "torn", "ok": tr')  # the process died mid-write
    assert [o.tool for o in memory.outcomes()] == ["a"]


def test_records_after_a_torn_line_are_kept(memory: Memory, tmp_path: Path) -> None:
    memory.record("a", True, 0.1)
    with (tmp_path / MEMORY_FILE).open("a") as f:
        f.write('{"ts": 1.0, "tool": "torn", "ok": tr')
    memory.record("b", True, 0.1)  # the first record after the restart
    memory.record("c", True, 0.1)
    assert [o.tool for o in memory.outcomes()] == ["a", "b", "c"]


def test_memory_survives_a_new_instance(tmp_path: Path) -> None:
    Memory(tmp_path).record("persisted", True, 0.2)
    assert [o.tool for o in Memory(tmp_path).outcomes()] == ["persisted"]


def test_records_from_many_threads_are_whole_lines(memory: Memory, tmp_path: Path) -> None:
    def work(n: int) -> None:
        for i in range(50):
            memory.record(f"t{n}", i % 2 == 0, 0.01, f"message {i} " + "y" * 200)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / MEMORY_FILE).read_text().splitlines()
    assert len(lines) == 400
    assert all(json.loads(line)["tool"].startswith("t") for line in lines)
