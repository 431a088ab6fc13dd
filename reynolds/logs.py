"""structlog logging: JSON lines for machines, one readable coloured line per event on a terminal; task,
subtask and agent ids bound through context variables; secrets redacted either way."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, Literal

import structlog

REDACTED = "***"


class Redactor:
    """A structlog processor that replaces every known secret value wherever it appears in an event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        return value

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        return self._clean(event) if self.secrets else event


LogFormat = Literal["auto", "json", "console"]


def renderer(fmt: LogFormat) -> Any:
    """``auto`` is console when stderr is a terminal, JSON otherwise (containers, pipes, log shippers)."""
    if fmt == "console" or (fmt == "auto" and sys.stderr.isatty()):
        return structlog.dev.ConsoleRenderer(colors=True)
    return structlog.processors.JSONRenderer()


def configure_logging(level: str = "INFO", secrets: Iterable[str] = (), fmt: LogFormat = "auto") -> None:
    """Reynolds' own logs and, through the stdlib bridge, the libraries', on stderr in one format."""
    redactor = Redactor(secrets)
    render = renderer(fmt)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redactor, render],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),  # one write per line: workers share stderr
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redactor,
                render,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpx2", "httpcore", "mcp.client", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
