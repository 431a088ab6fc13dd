"""The engine: accepts plans, moves tasks through their graph, finishes them, and answers questions.

It owns the hand-over between Postgres and Redis (a subtask is stored before it is queued; the
recovery sweep re-queues anything stored but never handed over, and everything queued when Redis
lost its data), every attempt's outcome (the dispatcher hands over the raw ``Attempt``; ``settle``
applies the policy of ``reynolds.retry``: store, retry with backoff, dead-letter, metrics) and the end
of a task (closing message, metrics, progress).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import asyncpg
import mcp_types as types
import redis.asyncio as aioredis
import structlog

from reynolds import errors, payload, retry, tracing, workspaces
from reynolds.batching import Batcher
from reynolds.config import Settings
from reynolds.experiments.strategies import chain_lanes, learned_strategy
from reynolds.keys import Keys
from reynolds.metrics import Metrics
from reynolds.models import (
    TERMINAL_SUBTASK_STATES,
    TERMINAL_TASK_STATES,
    Attempt,
    Outcome,
    Plan,
    Planning,
    PlanView,
    Ready,
    Strategy,
    SubtaskSpec,
    SubtaskState,
    TaskList,
    TaskState,
    TaskView,
    Transition,
    WorkspaceSpec,
)
from reynolds.personality import closing_message
from reynolds.plan import build_plan
from reynolds.queue import TaskQueue
from reynolds.registry import Registry
from reynolds.retry import Verdict
from reynolds.store import Store
from reynolds.tracing import tracer
from reynolds.waiters import Waiters

log = structlog.get_logger("reynolds.engine")

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
STALE_READY_S = 5.0  # a ready subtask not handed to Redis after this long was orphaned by a crash
PROGRESS_MIN_INTERVAL_S = 0.2
MAX_EVENTS_SHOWN = 1000
MAX_REASON = 1000  # characters of a rejection reason kept


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: TaskQueue,
        registry: Registry,
        redis: aioredis.Redis,
        keys: Keys,
        metrics: Metrics,
        owner: str,
    ) -> None:
        """``owner`` is this process' lease name (the dispatcher's consumer): outcomes are stored under it."""
        self.settings = settings
        self.store = store
        self.queue = queue
        self.registry = registry
        self.redis = redis
        self.keys = keys
        self.metrics = metrics
        self._estimates: tuple[float, dict[tuple[str, str], float]] = (0.0, {})
        self._events: dict[str, dict[str, Any]] = {}  # latest unsent progress event per task
        self.owner = owner
        self.waiters = Waiters(redis, keys)
        self._stats: list[tuple[str, str, bool, float, str | None]] = []  # outcomes not yet in tool_stats
        # concurrent calls share Postgres round trips for their outcomes (group commit)
        self._outcomes: Batcher[Outcome, Transition | None] = Batcher(
            lambda outcomes: store.finish_many(outcomes, owner, self.closing)
        )

    def closing(self, view: TaskView) -> str:
        return closing_message(view, self.settings.personality)

    # ------------------------------------------------------------------ planning
    async def estimate(self) -> Callable[[str, str], float]:
        stamp, known = self._estimates
        if time.monotonic() - stamp > 10:
            known = await self.store.duration_estimates()
            self._estimates = (time.monotonic(), known)
        return lambda pool, tool: known.get((pool, tool), 1.0)

    async def plan(self, plan: Plan, strategy: Strategy = "parallel", lanes: int | None = None) -> PlanView:
        if strategy == "auto":  # experiments hook: the strategy an experiment found best for this plan's shape
            strategy, lanes = await learned_strategy(self.store.pool, plan, lanes)
        try:
            view = await self._build(plan, strategy)
        except errors.UnknownTool:
            # the fleet view is cached for a moment: an agent that registered through another process just
            # now must not be refused, so read the fleet again before saying no
            self.registry.forget_cache()
            view = await self._build(plan, strategy)
        return chain_lanes(view, lanes)  # experiments hook: hybrid's concurrency cap as ordering-only edges

    async def _build(self, plan: Plan, strategy: Strategy) -> PlanView:
        return build_plan(
            plan,
            await self.registry.catalog(),
            max_subtasks=self.settings.max_subtasks,
            max_depth=self.settings.max_depth,
            max_argument_bytes=self.settings.max_argument_bytes,
            strategy=strategy,
            estimate=await self.estimate(),
            tool_specs=await self.registry.tool_specs(),
            max_result_bytes=self.settings.max_result_bytes,
            max_resolved_argument_bytes=self.settings.max_resolved_argument_bytes,
            approve_destructive=self.settings.approve_destructive,
        )

    # ------------------------------------------------------------------ submission
    async def submit(
        self,
        plan: Plan,
        goal: str | None = None,
        strategy: Strategy = "parallel",
        priority: int = 0,
        timeout_s: float | None = None,
        planning: Planning | None = None,
        track_in_github: bool = False,
        submitter: str | None = None,
        lanes: int | None = None,
        workspace: WorkspaceSpec | None = None,
    ) -> tuple[str, PlanView]:
        """Validate, store and queue a plan. Raises a PlanError (and stores nothing) when it cannot run."""
        if track_in_github and not (self.settings.github_token and self.settings.github_repo):
            raise errors.InvalidRequest(
                "GitHub tracking is not configured: set REYNOLDS_GITHUB_TOKEN_FILE and REYNOLDS_GITHUB_REPO"
            )
        task_id = uuid.uuid4()
        # the task's spans, including every later dispatch (through the stored traceparent), are under this one
        with tracer.start_as_current_span("submit", attributes={"reynolds.task_id": str(task_id)}):
            traceparent = tracing.current_traceparent()
            with tracer.start_as_current_span("plan"):
                view = await self.plan(plan, strategy, lanes)
            with tracer.start_as_current_span("workspace"):
                tree = await workspaces.prepare(self.settings, str(task_id), workspace)  # before any dispatch
            deadline = datetime.now(UTC) + timedelta(seconds=timeout_s or self.settings.default_task_timeout_s)
            with tracer.start_as_current_span("store"):
                ready = await self.store.create_task(
                    task_id,
                    goal,
                    view.strategy,
                    priority,
                    plan.model_dump(mode="json"),
                    deadline,
                    view.subtasks,
                    planning,
                    track_in_github,
                    submitter,
                    tree.model_dump(mode="json"),
                    traceparent,
                )
            self.metrics.tasks_submitted.inc()
            log.info("task submitted", task_id=str(task_id), subtasks=len(view.subtasks), strategy=view.strategy)
            with tracer.start_as_current_span("queue"):
                await self.enqueue(ready)
        return str(task_id), view

    async def enqueue(self, ready: list[Ready]) -> None:
        if ready:
            await self.queue.push(ready)
            await self.store.mark_queued(ready)

    async def handoff(self, task_id: str, parent_id: str, subtasks: list[SubtaskSpec]) -> list[str]:
        """Add subtasks to a running task on an agent's request, under the loop-prevention rules."""
        depth = await self.store.subtask_depth(task_id, parent_id)
        if depth is None:
            raise errors.NotFound(f"task {task_id} has no subtask {parent_id!r}")
        if depth + 1 > self.settings.max_handoff_depth:
            await self._refuse(
                task_id,
                parent_id,
                "depth",
                f"handoff chain would be {depth + 1} deep; the limit (max_handoff_depth) is "
                f"{self.settings.max_handoff_depth}",
            )
        if len(subtasks) > self.settings.max_handoff_subtasks:
            await self._refuse(
                task_id,
                parent_id,
                "fanout",
                f"handoff adds {len(subtasks)} subtasks; the limit (max_handoff_subtasks) is "
                f"{self.settings.max_handoff_subtasks}",
            )
        chain = {
            (tool, json.dumps(args, sort_keys=True))
            for tool, args in await self.store.handoff_chain(task_id, parent_id)
        }
        for s in subtasks:
            if (s.tool, json.dumps(s.arguments, sort_keys=True)) in chain:
                await self._refuse(
                    task_id,
                    parent_id,
                    "repeat",
                    f"handoff repeats {s.tool} with the same arguments already in this chain",
                )
        if await self.store.event_count(task_id) >= self.settings.max_events_per_task:
            await self._refuse(task_id, parent_id, "events", "task reached its event cap (max_events_per_task)")
        existing = await self.store.subtask_ids(task_id)
        clash = [s.id for s in subtasks if s.id in existing]
        if clash:
            raise errors.DuplicateSubtask(f"task {task_id} already has subtasks {', '.join(clash)}")
        # validate the new part as a plan on its own, with existing subtasks allowed as dependencies
        new_ids = {s.id for s in subtasks}
        local = [s.model_copy(update={"depends_on": [d for d in s.depends_on if d in new_ids]}) for s in subtasks]
        for s in subtasks:
            missing = [d for d in s.depends_on if d not in new_ids and d not in existing]
            if missing:
                raise errors.UnknownDependency(f"handoff subtask {s.id!r} depends on unknown {', '.join(missing)}")
        view = await self.plan(Plan(subtasks=local))
        planned = {p.id: p for p in view.subtasks}
        for s in subtasks:
            planned[s.id].depends_on = list(dict.fromkeys([*s.depends_on, *planned[s.id].depends_on]))
        ready = await self.store.add_subtasks(task_id, parent_id, depth + 1, [planned[s.id] for s in subtasks])
        await self.enqueue(ready)
        await self.publish(task_id, {"handoff": [s.id for s in subtasks]})
        return [s.id for s in subtasks]

    async def _refuse(self, task_id: str, subtask_id: str, reason: str, message: str) -> None:
        self.metrics.loop_refusals.labels(reason).inc()
        await self.store.event(task_id, subtask_id, "loop_refused", {"reason": reason, "message": message})
        raise errors.LoopRefused(message)

    # ------------------------------------------------------------------ outcomes
    async def settle(self, attempt: Attempt) -> None:
        """Decide and apply one attempt's outcome: succeed, fail (and dead-letter when out of attempts) or retry
        after a backoff. Raises when Postgres or Redis cannot take it (the dispatcher then gives the lease back)."""
        claim = attempt.claim
        decision = retry.judge(attempt, self.settings.max_attempts)
        # whatever a tool wrote (NUL bytes, lone surrogates, megabytes) is made storable once, here
        error = payload.safe_text(decision.error, self.settings.max_result_bytes) if decision.error else None
        if attempt.result is not None:
            ok = decision.verdict is Verdict.SUCCEEDED
            self._stats.append((claim.pool, claim.tool, ok, attempt.elapsed_s, None if ok else (error or "")[:500]))
        if decision.verdict is Verdict.SUCCEEDED:
            assert attempt.result is not None
            await self._succeed(attempt)
        elif decision.verdict is Verdict.RETRY:
            await self._retry(attempt, decision)
        else:
            agent = attempt.agent_id
            outcome = Outcome(claim.task_id, claim.subtask_id, SubtaskState.FAILED, error=error, agent_id=agent)
            if await self._finish(attempt, outcome) and decision.verdict is Verdict.GAVE_UP:
                await self.queue.dead_letter(claim.pool, claim.task_id, claim.subtask_id, error or "", claim.attempts)

    async def _succeed(self, attempt: Attempt) -> None:
        """Store a successful result, made safe and bounded; a value Postgres still refuses fails the subtask
        once (running the call again cannot help)."""
        claim = attempt.claim
        assert attempt.result is not None
        output, note = payload.safe_output(_output(attempt.result), self.settings.max_result_bytes)
        state, agent = SubtaskState.SUCCEEDED, attempt.agent_id
        try:
            await self._finish(
                attempt, Outcome(claim.task_id, claim.subtask_id, state, result=output, error=note, agent_id=agent)
            )
        except asyncpg.DataError as err:
            failed = Outcome(
                claim.task_id,
                claim.subtask_id,
                SubtaskState.FAILED,
                error=f"the result could not be stored: {err}",
                agent_id=agent,
            )
            await self._finish(attempt, failed)

    async def _finish(self, attempt: Attempt, outcome: Outcome) -> bool:
        """Store a final outcome and carry it forward; False when this process no longer held the subtask."""
        claim = attempt.claim
        transition = await self._outcomes.submit(outcome)
        if transition is None:
            log.warning("outcome discarded: lease lost", task_id=claim.task_id, subtask_id=claim.subtask_id)
            return False
        self.metrics.subtasks.labels(claim.pool, outcome.state).inc()
        if outcome.state is SubtaskState.SUCCEEDED:
            self.metrics.subtask_duration.labels(claim.pool, claim.tool).observe(attempt.elapsed_s)
        if not transition.task_state and (too_big := await workspaces.over_cap(self.settings, claim.task_id)):
            await self.cancel(claim.task_id, too_big, final_state=TaskState.FAILED)  # the tree outgrew its cap
            return True
        await self.enqueue(transition.released)
        await self.publish(claim.task_id, {"subtask": claim.subtask_id, "state": outcome.state})
        if transition.task_state:
            await self.finished(claim.task_id, transition.view)
        return True

    async def _retry(self, attempt: Attempt, decision: retry.Decision) -> None:
        """Postgres first (running -> ready, not before the backoff), then Redis (the delayed set)."""
        claim = attempt.claim
        delay = retry.backoff_s(claim.attempts, self.settings.backoff_base_s, self.settings.backoff_max_s)
        error = decision.error or ""
        if await self.store.schedule_retry(claim.task_id, claim.subtask_id, self.owner, error, delay, attempt.agent_id):
            self.metrics.retries.labels(claim.pool, decision.reason).inc()
            ready = Ready(claim.task_id, claim.subtask_id, claim.pool, attempt.rank, attempt.priority)
            await self.queue.push_later(ready, delay)
            await self.store.mark_queued([ready])
            await self.publish(claim.task_id, {"subtask": claim.subtask_id, "state": "retrying"})

    async def flush_stats(self) -> None:
        """Write the call outcomes gathered since the last flush (one round trip instead of one per call)."""
        batch, self._stats = self._stats, []
        try:
            await self.store.record_stats(batch)
        except Exception:
            self._stats[:0] = batch  # keep them for the next round
            raise

    async def finished(self, task_id: str, view: TaskView | None = None) -> TaskView:
        """A task ended (its state and closing message are stored, in one transaction): metrics and waiters.
        ``view`` is the task as that transaction left it, when the caller has it."""
        view = view or await self.store.task_view(task_id)
        await workspaces.settle(self.settings, self.store, view)
        self.metrics.tasks.labels(view.state).inc()
        for s in view.subtasks:
            if s.state in (SubtaskState.SKIPPED, SubtaskState.CANCELLED):
                self.metrics.subtasks.labels(s.pool, s.state).inc()
        busy = sum(s.duration_s or 0 for s in view.subtasks)
        if view.duration_s and busy:
            self.metrics.parallelism.observe(busy / view.duration_s)
        log.info("task finished", task_id=task_id, state=view.state, duration_s=view.duration_s)
        self.waiters.wake(task_id, final=True, view=view)
        await self.publish(task_id, {"task": view.state})
        return view

    async def cancel(
        self, task_id: str, reason: str = "cancelled by request", final_state: TaskState = TaskState.CANCELLED
    ) -> TaskView:
        if not await self.store.task_exists(task_id):
            raise errors.NotFound(f"no task {task_id}")
        if await self.store.cancel_task(task_id, reason, final_state, self.closing):
            await self.redis.publish(self.keys.control, json.dumps({"cancel": task_id}))
            return await self.finished(task_id)
        return await self.store.task_view(task_id)

    async def decide(self, task_id: str, subtask_id: str, approve: bool, by: str, reason: str = "") -> TaskView:
        """A person's decision on a subtask awaiting approval: approved, it is queued; rejected, it and its
        dependents are skipped. InvalidRequest when it is not awaiting approval."""
        _check_id(task_id)
        transition = await self.store.decide(task_id, subtask_id, approve, by, reason[:MAX_REASON], self.closing)
        if transition is None:
            raise errors.InvalidRequest(f"subtask {subtask_id!r} of task {task_id} is not awaiting approval")
        log.info("approval decided", task_id=task_id, subtask_id=subtask_id, approved=approve, by=by)
        await self.enqueue(transition.released)
        await self.publish(task_id, {"subtask": subtask_id, "state": "approved" if approve else "rejected"})
        if transition.task_state:
            return await self.finished(task_id, transition.view)
        return await self.get_task(task_id)

    async def expire_approvals(self) -> None:
        """Reject what has awaited approval longer than REYNOLDS_APPROVAL_TIMEOUT_S (any process may do it; the
        decision is guarded, so a second one finds nothing left to decide)."""
        timeout = self.settings.approval_timeout_s
        for task_id, subtask_id in await self.store.overdue_approvals(timeout):
            with contextlib.suppress(errors.InvalidRequest):
                await self.decide(task_id, subtask_id, False, "reynolds", f"no decision within {timeout:g} s")

    async def publish(self, task_id: str, event: dict[str, Any]) -> None:
        """Tell a task's waiters something changed. Events are coalesced per task and sent by ``flush_events``
        (they only wake waiters, which read the state from Postgres); the end of a task goes out at once. This
        process' own waiters are woken here and now."""
        self.waiters.wake(task_id, final="task" in event)
        if "task" in event:
            self._events.pop(task_id, None)
            await self.redis.publish(self.keys.progress(task_id), json.dumps(event))
        else:
            self._events[task_id] = event

    async def flush_events(self) -> None:
        batch, self._events = self._events, {}
        if batch:
            async with self.redis.pipeline(transaction=False) as pipe:
                for task_id, event in batch.items():
                    pipe.publish(self.keys.progress(task_id), json.dumps(event))
                await pipe.execute()

    # ------------------------------------------------------------------ reading
    async def get_task(self, task_id: str, include_events: bool = False) -> TaskView:
        _check_id(task_id)
        view = await self.store.task_view(task_id)
        await workspaces.settle(self.settings, self.store, view)  # a no-op unless a finisher died before it
        if include_events:
            view.events = await self.store.events(task_id, MAX_EVENTS_SHOWN)
        return view

    async def list_tasks(self, state: str | None, limit: int, offset: int, submitter: str | None = None) -> TaskList:
        return await self.store.list_tasks(state, limit, offset, submitter)

    async def wait(
        self,
        task_id: str,
        progress: ProgressFn | None = None,
        timeout_s: float | None = None,
        until_approval: bool = False,
    ) -> TaskView:
        """Block until the task ends (or, ``until_approval``, until a subtask awaits approval: the caller has to
        decide), reporting (done, total, message) progress along the way."""
        _check_id(task_id)
        with self.waiters.watch(task_id) as watch:
            last_report = last_check = 0.0
            last_done = -1
            check = True
            with anyio.move_on_after(timeout_s):
                while watch.view is None:
                    if check:
                        state = await self.store.task_state(task_id)
                        if state is None:
                            raise errors.NotFound(f"no task {task_id}")
                        if state in TERMINAL_TASK_STATES:
                            break
                        if until_approval and await self.store.awaiting_approval(task_id):
                            break
                        last_check = time.monotonic()
                    if progress and time.monotonic() - last_report >= PROGRESS_MIN_INTERVAL_S:
                        last_done = await self._report(task_id, progress, last_done)
                        last_report = time.monotonic()
                    ended = await watch.next(1.0)
                    # the end of a task wakes its waiters; otherwise look again once a second
                    check = ended is not False or time.monotonic() - last_check >= 1
        view = watch.view or await self.store.task_view(task_id)  # this process finished it: no second read
        await workspaces.settle(self.settings, self.store, view)  # the finisher may not have stored it yet
        if progress and view.state in TERMINAL_TASK_STATES:
            total = sum(view.counts.values())
            await progress(total, total, f"task {view.state}")
        return view

    async def _report(self, task_id: str, progress: ProgressFn, last_done: int) -> int:
        counts = await self.store.progress(task_id)
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in TERMINAL_SUBTASK_STATES)
        if done != last_done:
            running = counts.get(SubtaskState.RUNNING, 0)
            await progress(done, total, f"{done}/{total} subtasks finished, {running} running")
        return done

    # ------------------------------------------------------------------ upkeep
    async def sweep(self) -> None:
        """Re-queue subtasks orphaned between Postgres and Redis; fail tasks past their deadline; reject
        approvals nobody gave in time."""
        await self.reconcile()
        stale = await self.store.stale_ready(STALE_READY_S)
        if stale:
            log.warning("re-queueing orphaned ready subtasks", count=len(stale))
            await self.enqueue(stale)
        for task_id in await self.store.overdue_tasks():
            await self.cancel(task_id, "task timed out (timeout_s passed)", final_state=TaskState.FAILED)
        await self.expire_approvals()

    async def reconcile(self) -> None:
        """Give back to Redis what Postgres says is queued but Redis no longer has. When Redis lost its data (a
        new epoch), that is every queued subtask; otherwise, running subtasks whose lease ran out so long ago
        that their message would have been reclaimed. A duplicate message is harmless: claims are guarded."""
        lost_all = await self.queue.lost_data()
        orphans = await self.store.orphans(lost_all, 2 * self.settings.visibility_timeout_s)
        if not orphans:
            return
        log.warning("re-queueing subtasks Redis lost", count=len(orphans), redis_lost_data=lost_all)
        await self.queue.push([r for r, delay in orphans if delay <= 0])
        for r, delay in orphans:
            if delay > 0:
                await self.queue.push_later(r, delay)


def _output(result: types.CallToolResult) -> Any:
    """What a successful call stores as the subtask's output (its structured content, else its text)."""
    if result.structured_content is not None:
        return result.structured_content
    return {"text": retry.tool_text(result)}


def _check_id(task_id: str) -> None:
    try:
        uuid.UUID(task_id)
    except ValueError as err:
        raise errors.InvalidRequest(f"{task_id!r} is not a task id (a UUID)") from err
