"""Group commit: a lone write goes at once, writes that arrive during one go together in the next, a bad item
fails only its own caller, and a caller that gives up while waiting neither hangs the others nor gets written."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from reynolds.batching import Batcher

pytestmark = pytest.mark.anyio


class Recorder:
    """A write function that doubles numbers, remembers each batch, and can be held open or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = anyio.Event()
        self.hold = False
        self.before_return: Callable[[], object] | None = None

    async def write(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if self.hold:
            await self.release.wait()
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {items}")
        if self.before_return is not None:
            self.before_return()
        return [i * 2 for i in items]


async def test_a_lone_item_is_written_at_once_in_a_batch_of_its_own() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.write)
    assert await batcher.submit(3) == 6
    assert await batcher.submit(4) == 8
    assert recorder.batches == [[3], [4]]


async def test_items_arriving_during_a_write_go_together_in_the_next() -> None:
    recorder = Recorder()
    recorder.hold = True
    batcher = Batcher(recorder.write)
    answers: dict[int, int] = {}

    async def submit(i: int) -> None:
        answers[i] = await batcher.submit(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit, 1)
        await anyio.wait_all_tasks_blocked()
        for i in (2, 3, 4):
            tg.start_soon(submit, i)
        await anyio.wait_all_tasks_blocked()
        assert recorder.batches == [[1]]  # 2, 3 and 4 wait for the write in flight
        recorder.hold = False
        recorder.release.set()
    assert recorder.batches == [[1], [2, 3, 4]]
    assert answers == {1: 2, 2: 4, 3: 6, 4: 8}


async def test_batches_are_capped_at_max_size() -> None:
    recorder = Recorder()
    recorder.hold = True
    batcher = Batcher(recorder.write, max_size=2)
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(batcher.submit, i)
        await anyio.wait_all_tasks_blocked()
        recorder.hold = False
        recorder.release.set()
    assert recorder.batches == [[0], [1, 2], [3, 4]]


async def test_a_failing_batch_is_retried_item_by_item_so_only_the_bad_item_fails() -> None:
    recorder = Recorder()
    recorder.hold = True
    batcher = Batcher(recorder.write)
    answers: dict[int, int | str] = {}

    async def submit(i: int) -> None:
        try:
            answers[i] = await batcher.submit(i)
        except ValueError as err:
            answers[i] = str(err)

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit, 1)
        await anyio.wait_all_tasks_blocked()
        for i in (2, -3, 4):
            tg.start_soon(submit, i)
        await anyio.wait_all_tasks_blocked()
        recorder.hold = False
        recorder.release.set()
    assert recorder.batches == [[1], [2, -3, 4], [2], [-3], [4]]
    assert answers == {1: 2, 2: 4, -3: "negative item in [-3]", 4: 8}


@pytest.mark.parametrize("when", ["while waiting", "as its turn to write comes"])
async def test_a_caller_that_gives_up_is_not_written_and_does_not_block_the_rest(when: str) -> None:
    recorder = Recorder()
    recorder.hold = True
    batcher = Batcher(recorder.write)
    answers: dict[int, int] = {}
    quitter = anyio.CancelScope()

    async def submit(i: int) -> None:
        answers[i] = await batcher.submit(i)

    async def give_up() -> None:
        with quitter:
            await batcher.submit(5)

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit, 1)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(give_up)  # first in line for the next write
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(submit, 3)
        await anyio.wait_all_tasks_blocked()
        if when == "while waiting":
            quitter.cancel()
            await anyio.wait_all_tasks_blocked()
        else:
            recorder.before_return = quitter.cancel  # cancelled just before the turn passes to it
        recorder.hold = False
        recorder.release.set()
    assert recorder.batches == [[1], [3]]
    assert answers == {1: 2, 3: 6}


async def test_the_write_in_flight_finishes_for_the_others_when_its_caller_is_cancelled() -> None:
    recorder = Recorder()
    recorder.hold = True
    batcher = Batcher(recorder.write)
    answers: dict[int, int] = {}
    leader = anyio.CancelScope()

    async def lead() -> None:
        with leader:
            await batcher.submit(1)

    async def submit(i: int) -> None:
        answers[i] = await batcher.submit(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lead)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(submit, 2)
        await anyio.wait_all_tasks_blocked()
        leader.cancel()  # the write of 1 is shielded: it completes, then 2 is written
        await anyio.wait_all_tasks_blocked()
        recorder.hold = False
        recorder.release.set()
    assert recorder.batches == [[1], [2]]
    assert answers == {2: 4}


async def test_a_write_that_hangs_fails_its_items_after_the_timeout_and_the_next_write_goes_ahead() -> None:
    recorder = Recorder()
    recorder.hold = True  # never released for the first batch
    batcher = Batcher(recorder.write, timeout_s=0.2)
    errors: list[str] = []
    answers: dict[int, int] = {}

    async def submit(i: int) -> None:
        try:
            answers[i] = await batcher.submit(i)
        except TimeoutError as err:
            errors.append(f"{i}: {err}")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(submit, 1)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(submit, 2)  # waits, then writes after the first write gave up
            await anyio.wait_all_tasks_blocked()
            recorder.hold = False  # only writes that start from now on go through
            recorder.release = anyio.Event()
            recorder.release.set()
    assert errors == ["1: the write did not finish within 0.2 s"]
    assert answers == {2: 4}
    assert recorder.batches == [[1], [2]]
