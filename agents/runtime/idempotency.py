"""Deduplicate repeated tool calls that carry the same idempotency key in ``_meta``.

Reynolds puts ``task_id/subtask_id`` under ``IDEMPOTENCY_META_KEY`` in every call. When the same
key arrives again (Reynolds retried after losing the answer), the replica returns the stored
result instead of running the tool twice; a repeat that arrives while the first run is still in
flight waits for it. Only successful results are kept: a failed call may be run again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from agents.runtime.results import is_error

IDEMPOTENCY_META_KEY = "reynolds/idempotency-key"


class IdempotencyMiddleware:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._done: OrderedDict[str, HandlerResult] = OrderedDict()
        self._running: dict[str, anyio.Event] = {}

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        key = (ctx.meta or {}).get(IDEMPOTENCY_META_KEY) if ctx.method == "tools/call" else None
        if not isinstance(key, str) or not key:
            return await call_next(ctx)
        while key in self._running:
            await self._running[key].wait()
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        self._running[key] = done = anyio.Event()
        try:
            result = await call_next(ctx)
            if not is_error(result):
                self._done[key] = result
                while len(self._done) > self.capacity:
                    self._done.popitem(last=False)
            return result
        finally:
            del self._running[key]
            done.set()
