"""Group commit: concurrent callers of one kind of write share a round trip.

A ``Batcher`` wraps a function that writes many items at once. A caller that finds no write in flight
writes its own item straight away, together with any others waiting; callers that arrive while a write is
in flight wait, and the first of them writes all that gathered in the meantime once it ends. A lone call
adds no delay, and under load one Postgres round trip (and one commit) serves many calls.

If a batch of several items fails, each item is written again on its own, so one bad item fails only its
own caller. A write is not cancelled with the caller that started it (the others' items ride on it), but it
is bounded: one that takes longer than ``timeout_s`` fails with TimeoutError for every item still in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass(eq=False)
class _Slot(Generic[Item, Answer]):
    item: Item
    turn: anyio.Event = field(default_factory=anyio.Event)  # set when written, or when this caller must write
    written: bool = False  # its write is over, with an answer or an error
    answer: Answer | None = None
    error: Exception | None = None


class Batcher(Generic[Item, Answer]):
    def __init__(
        self, write: Callable[[list[Item]], Awaitable[Sequence[Answer]]], max_size: int = 64, timeout_s: float = 30.0
    ) -> None:
        """``write`` takes items and returns one answer per item, in the same order."""
        self._write = write
        self._max_size = max_size
        self._timeout_s = timeout_s
        self._waiting: list[_Slot[Item, Answer]] = []
        self._writing = False  # a caller is writing, or has been told it is next

    async def submit(self, item: Item) -> Answer:
        """Write ``item`` (with whatever else is waiting) and return its answer, or raise its error."""
        slot: _Slot[Item, Answer] = _Slot(item)
        self._waiting.append(slot)
        if self._writing:
            try:
                await slot.turn.wait()
            except BaseException:  # cancelled while waiting: take the item back, or pass the turn on
                if slot in self._waiting:
                    self._waiting.remove(slot)
                if slot.turn.is_set() and not slot.written:
                    self._next()
                raise
        if not slot.written:  # this caller's turn: write everything waiting, its own item first in line
            self._writing = True
            batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size :]
            try:
                with anyio.CancelScope(shield=True, deadline=anyio.current_time() + self._timeout_s):
                    await self._write_batch(batch)
                for unfinished in (s for s in batch if not s.written):
                    unfinished.error = TimeoutError(f"the write did not finish within {self._timeout_s:g} s")
                    self._settle(unfinished)
            finally:
                self._next()
        if slot.error is not None:
            raise slot.error
        return slot.answer  # type: ignore[return-value]  # written without error: the answer is set

    def _next(self) -> None:
        """Hand the next write to the first waiting caller, or note that nobody is writing."""
        if self._waiting:
            self._waiting[0].turn.set()
        else:
            self._writing = False

    async def _write_batch(self, batch: list[_Slot[Item, Answer]]) -> None:
        try:
            answers = await self._write([s.item for s in batch])
        except Exception as err:
            if len(batch) == 1:
                batch[0].error = err
            else:
                for slot in batch:
                    await self._write_batch([slot])
                return
        else:
            for slot, answer in zip(batch, answers, strict=True):
                slot.answer = answer
        for slot in batch:
            self._settle(slot)

    @staticmethod
    def _settle(slot: _Slot[Item, Answer]) -> None:
        slot.written = True
        slot.turn.set()
