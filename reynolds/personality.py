"""Reynolds' closing words on a task: warm, a little dry, chosen by how the task went.
``REYNOLDS_PERSONALITY=off`` gives the plain sentence alone."""

from __future__ import annotations

import zlib

from reynolds.models import SubtaskState, TaskState, TaskView

LINES = {
    TaskState.SUCCEEDED: [
        "Everything landed. I'd take a bow, but the agents did the lifting.",
        "All green. Somewhere a status meeting just got cancelled, and you're welcome.",
        "Done, and in parallel, which is the only civilised way to do anything.",
        "That went smoothly enough to be suspicious. I checked twice. It's real.",
    ],
    TaskState.FAILED: [
        "Not our finest hour. The details are below, and they are honest.",
        "Some of it worked, some of it very much did not. Here's who to talk to.",
        "I've seen worse, but I was younger then. The errors below tell the story.",
    ],
    TaskState.CANCELLED: [
        "Stopped, as asked. No hard feelings; half the fun is knowing when to quit.",
        "Cancelled. The agents have been told to put their tools down.",
    ],
}


def plain(view: TaskView) -> str:
    counts = view.counts
    total = sum(counts.values())
    done = counts.get(SubtaskState.SUCCEEDED, 0)
    if view.state == TaskState.SUCCEEDED:
        return f"Task {view.task_id} succeeded: {done}/{total} subtasks done in {view.duration_s or 0:.2f} s."
    if view.state == TaskState.CANCELLED:
        return f"Task {view.task_id} was cancelled: {done}/{total} subtasks had finished."
    failed = [s.id for s in view.subtasks if s.state == SubtaskState.FAILED]
    skipped = counts.get(SubtaskState.SKIPPED, 0)
    reason = f" ({view.error})" if view.error else ""
    return (
        f"Task {view.task_id} failed{reason}: {done}/{total} succeeded"
        + (f", failed: {', '.join(failed[:10])}" if failed else "")
        + (f", {skipped} skipped" if skipped else "")
        + "."
    )


def closing_message(view: TaskView, personality: str = "on") -> str:
    text = plain(view)
    if personality == "off":
        return text
    options = LINES.get(view.state, LINES[TaskState.FAILED])
    line = options[zlib.crc32(view.task_id.encode()) % len(options)]  # stable per task
    return f"{line} {text}"
