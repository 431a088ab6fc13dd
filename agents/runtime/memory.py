"""The agent's own memory: an append-only JSON-lines log of its tool runs in the memory volume.

Each record says which tool ran, whether it worked, how long it took and, for failures, a
signature (the error with numbers, paths and quoted values folded) so that recurring failures
group together. ``recall`` answers from this log; it survives restarts because the file does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

MEMORY_FILE = "outcomes.jsonl"
MAX_SUMMARY = 300


def failure_signature(message: str) -> str:
    """Fold the variable parts of an error message so that the same failure always looks the same."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "<v>", message)
    text = re.sub(r"(/[\w.\-]+)+", "<path>", text)
    text = re.sub(r"\d+(\.\d+)?", "<n>", text)
    return re.sub(r"\s+", " ", text).strip()[:200]


class Outcome(BaseModel):
    ts: float
    tool: str
    ok: bool
    duration_s: float
    summary: str = ""
    signature: str = ""


class ToolStats(BaseModel):
    tool: str
    runs: int
    failures: int
    mean_duration_s: float
    common_failures: list[tuple[str, int]] = Field(description="(signature, count), most frequent first")


class Recall(BaseModel):
    stats: list[ToolStats]
    matches: list[Outcome]


class Memory:
    """Append-only outcome log; safe to call from tool threads and the event loop."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / MEMORY_FILE
        self._lock = threading.Lock()

    def record(self, tool: str, ok: bool, duration_s: float, message: str = "") -> None:
        outcome = Outcome(
            ts=time.time(),
            tool=tool,
            ok=ok,
            duration_s=round(duration_s, 4),
            summary=message[:MAX_SUMMARY],
            signature="" if ok else failure_signature(message),
        )
        with self._lock, self.path.open("a+b") as f:
            if f.tell() > 0:
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # a crash tore the last line; do not glue this record onto it
            f.write(outcome.model_dump_json().encode() + b"\n")

    def outcomes(self) -> list[Outcome]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text().splitlines():
            try:
                found.append(Outcome.model_validate(json.loads(line)))
            except (ValueError, TypeError):
                continue  # a torn last line after a crash is skipped, not fatal
        return found

    def recall(self, tool: str | None = None, query: str | None = None, limit: int = 20) -> Recall:
        outcomes = [o for o in self.outcomes() if tool is None or o.tool == tool]
        by_tool: dict[str, list[Outcome]] = {}
        for o in outcomes:
            by_tool.setdefault(o.tool, []).append(o)
        stats = [
            ToolStats(
                tool=name,
                runs=len(runs),
                failures=sum(not o.ok for o in runs),
                mean_duration_s=round(sum(o.duration_s for o in runs) / len(runs), 4),
                common_failures=Counter(o.signature for o in runs if not o.ok).most_common(3),
            )
            for name, runs in sorted(by_tool.items())
        ]
        words = (query or "").lower().split()
        matches = [o for o in outcomes if all(w in f"{o.tool} {o.summary}".lower() for w in words)]
        return Recall(stats=stats, matches=matches[-limit:][::-1])
