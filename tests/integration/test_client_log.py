"""Log notifications through the SDK's client, in both protocol eras: a waiting orchestrate sends the task's
events as log messages, filtered by logging/setLevel (handshake era) or the request's logLevel (2026)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp.client import Client
from mcp.types import LoggingMessageNotificationParams

from reynolds.client import call
from tests.integration.cluster import Cluster
from tests.integration.conftest import sdk_client, start_workbench

pytestmark = pytest.mark.anyio
PLAN = {
    "subtasks": [
        {"id": "ok", "tool": "echo", "arguments": {"value": 1}},
        {"id": "bad", "tool": "fail", "arguments": {"message": "planned failure"}},
        {"id": "after", "tool": "echo", "arguments": {"value": 2}, "depends_on": ["bad"]},
    ]
}


@asynccontextmanager
async def client(c: Cluster, seen: list[LoggingMessageNotificationParams], **options: Any) -> AsyncIterator[Client]:
    async def on_log(params: LoggingMessageNotificationParams) -> None:
        seen.append(params)

    async with sdk_client(c.reynolds[0], c.client_token, logging_callback=on_log, **options) as session:
        yield session


def lines(seen: list[LoggingMessageNotificationParams]) -> list[tuple[str, str]]:
    return [(p.level, str(p.data)) for p in seen if p.logger == "reynolds.task"]


async def test_handshake_era_set_level_filters_the_task_events(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    seen: list[LoggingMessageNotificationParams] = []
    async with client(reynolds_cluster, seen, mode="legacy") as session:
        assert session.server_capabilities.logging is not None  # declared once setLevel is answered
        await session.set_logging_level("warning")
        task = await call(session, "orchestrate", {"plan": PLAN})
    assert task["state"] == "failed"
    got = lines(seen)
    assert ("error", "subtask bad: subtask_failed (Error executing tool fail: planned failure)") in got, got
    assert any(level == "warning" and "subtasks_skipped" in text for level, text in got), got
    assert all(level in ("warning", "error") for level, _ in got), got  # nothing below the level asked for


async def test_handshake_era_without_set_level_sends_info_and_above(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    seen: list[LoggingMessageNotificationParams] = []
    async with client(reynolds_cluster, seen, mode="legacy") as session:
        await call(session, "orchestrate", {"plan": {"subtasks": [PLAN["subtasks"][0]]}})
    got = lines(seen)
    assert any(level == "info" and text.startswith("subtask ok: subtask_succeeded") for level, text in got), got


async def test_2026_era_delivers_what_the_request_opted_into(reynolds_cluster: Cluster) -> None:
    start_workbench(reynolds_cluster)
    seen: list[LoggingMessageNotificationParams] = []
    async with client(reynolds_cluster, seen, log_level="error") as session:
        task = await call(session, "orchestrate", {"plan": PLAN})
    assert task["state"] == "failed"
    got = lines(seen)
    assert got and all(level == "error" for level, _ in got), got
    assert ("error", "subtask bad: subtask_failed (Error executing tool fail: planned failure)") in got

    quiet: list[LoggingMessageNotificationParams] = []
    async with client(reynolds_cluster, quiet) as session:  # no opt-in: no log messages at all
        await call(session, "orchestrate", {"plan": PLAN})
    assert lines(quiet) == []
