"""One run's measures, from what Reynolds itself recorded in Postgres (never the client's clock).

makespan_s    task created -> task finished
success_rate  subtasks that succeeded / subtasks
retries       attempts beyond the first, summed
overhead_s    mean wait from ready (dependencies done) to started on an agent
parallelism   busy seconds (sum of subtask run times) / makespan
utilisation   mean over the agents that ran subtasks of the share of the makespan they were busy
              (overlapping calls on one agent count once)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from reynolds.models import SubtaskState

TASK_SQL = "SELECT created_at, finished_at, state FROM tasks WHERE id = $1::uuid"
SUBTASKS_SQL = (
    "SELECT state, attempts, ready_at, started_at, finished_at, coalesce(agent_id, last_agent_id) AS agent"
    " FROM subtasks WHERE task_id = $1::uuid"
)


async def measure(pool: asyncpg.Pool, task_id: str) -> dict[str, Any]:
    task = await pool.fetchrow(TASK_SQL, task_id)
    subtasks = await pool.fetch(SUBTASKS_SQL, task_id)
    return measures(task, subtasks)


def measures(task: Any, subtasks: Sequence[Any]) -> dict[str, Any]:
    makespan = _seconds(task["created_at"], task["finished_at"]) or 0.0
    ran = [s for s in subtasks if s["started_at"] and s["finished_at"]]
    busy = sum(_seconds(s["started_at"], s["finished_at"]) or 0.0 for s in ran)
    waits = [_seconds(s["ready_at"], s["started_at"]) for s in ran if s["ready_at"]]
    per_agent: dict[str, list[tuple[datetime, datetime]]] = {}
    for s in ran:
        per_agent.setdefault(s["agent"] or "?", []).append((s["started_at"], s["finished_at"]))
    utilisation = {agent: _covered(spans) / makespan if makespan else 0.0 for agent, spans in per_agent.items()}
    return {
        "state": task["state"],
        "makespan_s": makespan,
        "success_rate": sum(s["state"] == SubtaskState.SUCCEEDED for s in subtasks) / len(subtasks)
        if subtasks
        else 0.0,
        "retries": float(sum(max(s["attempts"] - 1, 0) for s in subtasks)),
        "overhead_s": sum(w for w in waits if w is not None) / len(waits) if waits else 0.0,
        "parallelism": busy / makespan if makespan else 0.0,
        "utilisation": sum(utilisation.values()) / len(utilisation) if utilisation else 0.0,
        "agents": {agent: round(u, 4) for agent, u in sorted(utilisation.items())},
    }


def _covered(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of the intervals."""
    total, end = 0.0, None
    for start, finish in sorted(spans):
        if end is None or start > end:
            total += (finish - start).total_seconds()
            end = finish
        elif finish > end:
            total += (finish - end).total_seconds()
            end = finish
    return total


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None
