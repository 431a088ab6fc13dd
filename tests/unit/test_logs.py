"""Log redaction and JSON output: a secret never reaches stderr, wherever it sits in an event."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from reynolds.logs import REDACTED, Redactor, configure_logging

SECRET = "s3cr3t-token-value"
OTHER = "db-password-99"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def test_redactor_cleans_nested_values() -> None:
    redact = Redactor([SECRET, OTHER])
    event = {
        "event": f"calling with {SECRET}",
        "headers": {"authorization": f"Bearer {SECRET}", "nested": {"list": [OTHER, ("x", f"pre{SECRET}post")]}},
        "count": 3,
        "none": None,
    }
    cleaned = redact(None, "info", event)
    assert cleaned == {
        "event": f"calling with {REDACTED}",
        "headers": {"authorization": f"Bearer {REDACTED}", "nested": {"list": [REDACTED, ("x", f"pre{REDACTED}post")]}},
        "count": 3,
        "none": None,
    }
    assert SECRET not in json.dumps(cleaned)


def test_longer_secrets_are_replaced_before_the_secrets_they_contain() -> None:
    redact = Redactor(["abcdef", "abcdef-and-more"])
    assert redact(None, "info", {"event": "x abcdef-and-more y"})["event"] == f"x {REDACTED} y"


def test_very_short_values_are_not_treated_as_secrets() -> None:
    # redacting "ok" or "1234" would shred ordinary log lines
    redact = Redactor(["ok", "12345", ""])
    assert redact(None, "info", {"event": "ok 12345"}) == {"event": "ok 12345"}


def test_configure_logging_writes_redacted_json(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO", secrets=[SECRET, OTHER])
    structlog.get_logger("reynolds.test").info("connected", token=SECRET, detail={"dsn": f"postgres://u:{OTHER}@h"})
    logging.getLogger("some.library").warning("library saw %s", SECRET)
    structlog.get_logger("reynolds.test").debug("below the level", token=SECRET)
    err = capsys.readouterr().err
    assert SECRET not in err and OTHER not in err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert len(lines) == 2
    ours, theirs = lines
    assert ours["event"] == "connected" and ours["token"] == REDACTED and ours["level"] == "info"
    assert ours["detail"] == {"dsn": f"postgres://u:{REDACTED}@h"}
    assert "timestamp" in ours
    assert theirs["event"] == f"library saw {REDACTED}" and theirs["level"] == "warning"
    assert theirs["logger"] == "some.library"


def test_bound_context_appears_in_every_line(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("DEBUG")
    structlog.contextvars.bind_contextvars(task_id="t-1", subtask_id="s-1")
    try:
        structlog.get_logger().debug("step")
    finally:
        structlog.contextvars.clear_contextvars()
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert (line["task_id"], line["subtask_id"], line["level"]) == ("t-1", "s-1", "debug")


def test_console_format_is_one_readable_line_per_event(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", secrets=[SECRET], fmt="console")
    structlog.get_logger("t").info("task finished", task_id="abc", token=SECRET)
    logging.getLogger("lib").warning("library says %s", SECRET)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 2
    assert "task finished" in lines[0] and "task_id" in lines[0] and "abc" in lines[0]
    assert not lines[0].lstrip().startswith("{")  # not JSON
    assert "library says" in lines[1]
    assert all(SECRET not in line and REDACTED in line for line in lines)


def test_auto_format_is_json_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", fmt="auto")  # capsys: stderr is a pipe, as in a container
    structlog.get_logger("t").info("hello")
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert line["event"] == "hello"
