"""Postgres: tasks, subtasks, events and tool statistics. Every state change is a guarded UPDATE
(``... WHERE state = 'x' RETURNING``), so concurrent Reynolds processes never both make it, and
every change to one task's graph runs under that task's row lock."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib import resources
from typing import Any
from uuid import UUID

import asyncpg

from reynolds import errors, payload
from reynolds.models import (
    TERMINAL_SUBTASK_STATES,
    Claim,
    ClaimRequest,
    EventView,
    Outcome,
    PlannedSubtask,
    Planning,
    Ready,
    SubtaskState,
    SubtaskView,
    TaskList,
    TaskState,
    TaskSummary,
    TaskView,
    Transition,
)

OPEN_STATES = (
    SubtaskState.PENDING,
    SubtaskState.AWAITING_APPROVAL,
    SubtaskState.READY,
    SubtaskState.QUEUED,
    SubtaskState.RUNNING,
)
# a subtask whose dependencies are done: ready, or awaiting approval first (ready_at is set either way)
RELEASE = "CASE WHEN {flag} THEN 'awaiting_approval' ELSE 'ready' END"
MIGRATION_LOCK = 7_271_000  # advisory lock id: one migrator at a time
Closing = Callable[[TaskView], str]  # a finished task's closing message, written with its final state


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("reynolds.migrations").iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return sorted(found)


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + payload.jsonb_bytes(value)  # binary jsonb: a version byte, then the text (never refused)


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Reynolds keeps no session state (only transaction-scoped locks), so a released connection needs no
    RESET ALL / UNLISTEN round trip."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    # binary format, because COPY (bulk insert of large plans) only speaks binary
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


SUBTASK_COLUMNS = [
    "task_id",
    "id",
    "seq",
    "tool",
    "pool",
    "arguments",
    "depends_on",
    "after_ids",
    "state",
    "rank",
    "retryable",
    "timeout_s",
    "max_attempts",
    "handoff_depth",
    "requires_approval",
]
SMALL_PLAN = 64  # subtasks stored by one pipelined INSERT; a larger plan goes in by COPY


def _released(requires_approval: bool) -> SubtaskState:
    """The state of a subtask whose dependencies are done."""
    return SubtaskState.AWAITING_APPROVAL if requires_approval else SubtaskState.READY


class Store:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema

    @classmethod
    async def connect(cls, dsn: str, password: str = "", schema: str = "public", size: int = 10) -> Store:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise errors.InvalidRequest(f"database schema {schema!r} is not a plain lowercase identifier")
        try:
            try:
                conn = await asyncpg.connect(dsn, password=password or None)
            except asyncpg.InvalidCatalogNameError:
                await _create_database(dsn, password)
                conn = await asyncpg.connect(dsn, password=password or None)
            try:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            finally:
                await conn.close()
            pool = await asyncpg.create_pool(
                dsn,
                password=password or None,
                min_size=1,
                max_size=size,
                init=_init_connection,
                reset=_no_reset,
                server_settings={"search_path": schema},
            )
        except (OSError, asyncpg.PostgresError) as err:
            raise errors.ServiceUnavailable(f"cannot reach Postgres at {_safe_dsn(dsn)}: {err}") from err
        return cls(pool, schema)

    async def close(self) -> None:
        await self.pool.close()

    # ------------------------------------------------------------------ migrations
    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; return the names applied."""
        applied: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in _migrations():
                if version in done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                applied.append(f"{version:03d}_{name}")
        return applied

    async def migrations_pending(self) -> list[str]:
        async with self.pool.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            done = (
                {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")} if exists else set()
            )
        return [f"{v:03d}_{n}" for v, n, _ in _migrations() if v not in done]

    # ------------------------------------------------------------------ submission
    async def create_task(
        self,
        task_id: UUID,
        goal: str | None,
        strategy: str,
        priority: int,
        plan: dict[str, Any],
        deadline: datetime | None,
        subtasks: Sequence[PlannedSubtask],
        planning: Planning | None = None,
        track_in_github: bool = False,
        submitter: str | None = None,
        workspace: dict[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> list[Ready]:
        """Store a task and all its subtasks in one transaction; return the ones ready to queue."""
        rows = []
        ready: list[Ready] = []
        for seq, s in enumerate(subtasks):
            state = SubtaskState.PENDING if s.depends_on or s.after else _released(s.requires_approval)
            if state == SubtaskState.READY:
                ready.append(Ready(str(task_id), s.id, s.pool, s.rank, priority))
            rows.append(
                (
                    task_id,
                    s.id,
                    seq,
                    s.tool,
                    s.pool,
                    s.arguments,
                    s.depends_on,
                    s.after,
                    state,
                    s.rank,
                    s.retryable,
                    s.timeout_s,
                    s.max_attempts,
                    0,
                    s.requires_approval,
                )
            )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO tasks (id, goal, state, strategy, priority, plan, deadline, planning, track_in_github,"
                " submitter, workspace, traceparent) VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                task_id,
                goal,
                strategy,
                priority,
                plan,
                deadline,
                (planning or Planning()).model_dump(),
                track_in_github,
                submitter,
                workspace,
                traceparent,
            )
            await self._insert_subtasks(conn, task_id, rows)
            await self._event(conn, task_id, None, "task_submitted", {"subtasks": len(rows), "strategy": strategy})
            await self._awaiting(conn, task_id, [r[1] for r in rows if r[8] == SubtaskState.AWAITING_APPROVAL])
        return ready

    async def _insert_subtasks(self, conn: asyncpg.Connection, task_id: UUID, rows: list[tuple[Any, ...]]) -> None:
        """A few rows as one pipelined INSERT (one round trip, ``ready_at`` set on the way in); many by COPY."""
        if len(rows) <= SMALL_PLAN:
            await conn.executemany(
                f"INSERT INTO subtasks ({', '.join(SUBTASK_COLUMNS)}, ready_at) VALUES"
                f" ({', '.join(f'${i + 1}' for i in range(len(SUBTASK_COLUMNS)))},"
                " CASE WHEN $9 IN ('ready', 'awaiting_approval') THEN now() END)",
                rows,
            )
            return
        await conn.copy_records_to_table("subtasks", schema_name=self.schema, records=rows, columns=SUBTASK_COLUMNS)
        await conn.execute(
            "UPDATE subtasks SET ready_at = now() WHERE task_id = $1 AND state IN ('ready', 'awaiting_approval')",
            task_id,
        )

    async def add_subtasks(
        self, task_id: str, parent_id: str, depth: int, subtasks: Sequence[PlannedSubtask]
    ) -> list[Ready]:
        """Handoff: add subtasks to a running task (ids already validated as new)."""
        ready: list[Ready] = []
        async with self.pool.acquire() as conn, conn.transaction():
            task = await conn.fetchrow("SELECT state, priority FROM tasks WHERE id = $1 FOR UPDATE", UUID(task_id))
            if task is None or task["state"] != TaskState.RUNNING:
                raise errors.InvalidRequest(f"task {task_id} is not running; nothing was added")
            seq = await conn.fetchval(
                "SELECT coalesce(max(seq), 0) + 1 FROM subtasks WHERE task_id = $1", UUID(task_id)
            )
            done = {
                r["id"]: r["state"]
                for r in await conn.fetch("SELECT id, state FROM subtasks WHERE task_id = $1", UUID(task_id))
            }
            for i, s in enumerate(subtasks):
                deps_open = any(done.get(d) != SubtaskState.SUCCEEDED for d in s.depends_on)
                state = SubtaskState.PENDING if deps_open else _released(s.requires_approval)
                await conn.execute(
                    "INSERT INTO subtasks (task_id, id, seq, tool, pool, arguments, depends_on, state, rank,"
                    " retryable, timeout_s, max_attempts, handoff_depth, parent_id, requires_approval, ready_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
                    " CASE WHEN $8 IN ('ready', 'awaiting_approval') THEN now() END)",
                    UUID(task_id),
                    s.id,
                    seq + i,
                    s.tool,
                    s.pool,
                    s.arguments,
                    s.depends_on,
                    state,
                    s.rank,
                    s.retryable,
                    s.timeout_s,
                    s.max_attempts,
                    depth,
                    parent_id,
                    s.requires_approval,
                )
                if state == SubtaskState.READY:
                    ready.append(Ready(task_id, s.id, s.pool, s.rank, task["priority"]))
                elif state == SubtaskState.AWAITING_APPROVAL:
                    await self._awaiting(conn, UUID(task_id), [s.id])
            await self._event(
                conn, UUID(task_id), parent_id, "handoff", {"added": [s.id for s in subtasks], "depth": depth}
            )
        return ready

    async def mark_queued(self, items: Sequence[Ready]) -> None:
        """Hand-over to Redis done: ready -> queued (a no-op for anything a dispatcher already claimed)."""
        by_task: dict[str, list[str]] = {}
        for r in items:
            by_task.setdefault(r.task_id, []).append(r.subtask_id)
        async with self.pool.acquire() as conn:
            for task_id, ids in by_task.items():
                await conn.execute(
                    # a row locked right now is being claimed, which moves it past queued anyway
                    "UPDATE subtasks SET state = 'queued' WHERE (task_id, id) IN (SELECT task_id, id FROM subtasks"
                    " WHERE task_id = $1 AND id = ANY($2) AND state = 'ready' FOR UPDATE SKIP LOCKED)",
                    UUID(task_id),
                    ids,
                )

    async def stale_ready(self, older_than_s: float, limit: int = 1000) -> list[Ready]:
        """Subtasks stored as ready but never handed to Redis (their process died in between)."""
        rows = await self.pool.fetch(
            "SELECT s.task_id, s.id, s.pool, s.rank, t.priority FROM subtasks s JOIN tasks t ON t.id = s.task_id"
            " WHERE t.state = 'running' AND s.finished_at IS NULL"
            " AND s.state = 'ready' AND s.ready_at < now() - make_interval(secs => $1)"
            " AND (s.not_before IS NULL OR s.not_before < now()) LIMIT $2",
            older_than_s,
            limit,
        )
        return [Ready(str(r["task_id"]), r["id"], r["pool"], r["rank"], r["priority"]) for r in rows]

    # ------------------------------------------------------------------ dispatch
    async def claim(
        self, task_id: str, subtask_id: str, owner: str, lease_s: float, agent_id: str | None = None
    ) -> tuple[Claim | None, str]:
        """Take a subtask to run: ready/queued, or running under an expired lease. Returns (claim, why-not).
        ``agent_id`` is the replica it is meant for, shown by get_task while the call runs."""
        return (await self.claim_many([ClaimRequest(task_id, subtask_id, agent_id)], owner, lease_s))[0]

    async def claim_many(
        self, requests: Sequence[ClaimRequest], owner: str, lease_s: float
    ) -> list[tuple[Claim | None, str]]:
        """``claim`` for several subtasks in one statement; answers in the order asked. A subtask asked for
        twice is claimed once: the later request gets (None, "leased")."""
        # The plan walks the arrays in order, so rows are locked in key order, as cancel_task locks them:
        # two statements that each take several subtasks of one task do not wait on each other in a cycle.
        in_key_order = sorted(requests, key=lambda r: (UUID(r.task_id), r.subtask_id))
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "UPDATE subtasks s SET state = 'running', attempts = s.attempts + 1, lease_owner = $4,"
                " lease_until = now() + make_interval(secs => $5), started_at = now(), not_before = NULL,"
                " agent_id = coalesce(o.for_agent, s.agent_id)"
                # o: the rows as they were before this statement (interrupted_on comes from them)
                " FROM tasks t, (SELECT o.task_id, o.id, o.state, o.agent_id, w.agent_id AS for_agent"
                "   FROM subtasks o JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS w(task_id, id, agent_id)"
                "   ON o.task_id = w.task_id AND o.id = w.id) o"
                " WHERE s.task_id = o.task_id AND s.id = o.id AND t.id = s.task_id AND t.state = 'running'"
                " AND (s.state IN ('ready', 'queued') OR (s.state = 'running' AND s.lease_until < now()))"
                " AND (s.not_before IS NULL OR s.not_before <= now() + interval '50 milliseconds')"
                " RETURNING s.task_id, s.id, s.tool, s.pool, s.arguments, s.depends_on, s.attempts, s.max_attempts,"
                " s.retryable, s.timeout_s, s.last_agent_id, t.deadline, s.ready_at,"
                " CASE WHEN o.state = 'running' THEN o.agent_id END AS interrupted_on, t.traceparent",
                [UUID(r.task_id) for r in in_key_order],
                [r.subtask_id for r in in_key_order],
                [r.agent_id for r in in_key_order],
                owner,
                lease_s,
            )
            claimed = {(str(r["task_id"]), r["id"]): r for r in rows}
            answers: list[tuple[Claim | None, str]] = []
            for r in requests:
                row = claimed.pop((r.task_id, r.subtask_id), None)
                if row is not None:
                    fields = {k: v for k, v in row.items() if k not in ("task_id", "id")}
                    answers.append((Claim(r.task_id, r.subtask_id, **fields), ""))
                else:
                    answers.append((None, await self._why_not_claimed(conn, r.task_id, r.subtask_id)))
        return answers

    @staticmethod
    async def _why_not_claimed(conn: asyncpg.Connection, task_id: str, subtask_id: str) -> str:
        current = await conn.fetchrow(
            "SELECT s.state, s.not_before > now() AS early, s.lease_until > now() AS leased,"
            " t.state AS task_state FROM subtasks s JOIN tasks t ON t.id = s.task_id"
            " WHERE s.task_id = $1 AND s.id = $2",
            UUID(task_id),
            subtask_id,
        )
        if current is None:
            return "gone"
        if current["state"] == SubtaskState.RUNNING and current["leased"]:
            return "leased"
        if current["early"]:
            return "early"
        return f"state {current['state']}, task {current['task_state']}"

    async def assign(self, task_id: str, subtask_id: str, owner: str, agent_id: str) -> None:
        """The call moved to another replica than the one claimed for."""
        await self.pool.execute(
            "UPDATE subtasks SET agent_id = $4 WHERE task_id = $1 AND id = $2 AND lease_owner = $3",
            UUID(task_id),
            subtask_id,
            owner,
            agent_id,
        )

    async def renew_leases(self, owner: str, lease_s: float) -> int:
        result = await self.pool.execute(
            # finished_at IS NULL lets it read the open-subtask index rather than all history. Rows locked by
            # someone else are being finished or cancelled right now and need no renewal; skipping them keeps
            # this statement out of lock cycles with a batch of finishes.
            "UPDATE subtasks SET lease_until = now() + make_interval(secs => $2) WHERE (task_id, id) IN ("
            " SELECT task_id, id FROM subtasks WHERE finished_at IS NULL AND lease_owner = $1 AND state = 'running'"
            " FOR UPDATE SKIP LOCKED)",
            owner,
            lease_s,
        )
        return int(result.split()[-1])

    async def outputs(self, task_id: str, ids: Sequence[str]) -> dict[str, Any]:
        rows = await self.pool.fetch(
            "SELECT id, result FROM subtasks WHERE task_id = $1 AND id = ANY($2)", UUID(task_id), list(ids)
        )
        return {r["id"]: r["result"] for r in rows}

    async def finish_many(self, outcomes: Sequence[Outcome], owner: str, closing: Closing) -> list[Transition | None]:
        """Record terminal outcomes and move their graphs on, in one transaction; answers in the order given:
        None for an outcome whose subtask this owner no longer holds, else a Transition. Each task's
        transition goes to the first of its outcomes, the task's others get an empty one. A task this
        finishes gets its closing message in the same transaction."""
        assert all(o.state in TERMINAL_SUBTASK_STATES for o in outcomes)
        async with self.pool.acquire() as conn, conn.transaction():
            # every task row lock first, in id order: a cancel (task, then subtasks) cannot form a cycle with it
            locked = await conn.fetch(
                "SELECT id, state FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
                list({UUID(o.task_id) for o in outcomes}),
            )
            rows = await conn.fetch(
                "WITH w AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[],"
                "   $6::text[], $7::jsonb[]) AS w(task_id, id, state, result, error, agent_id, event)),"
                " done AS (UPDATE subtasks s SET state = w.state, result = w.result, error = w.error,"
                "   agent_id = coalesce(w.agent_id, s.agent_id), last_agent_id = coalesce(w.agent_id, s.last_agent_id),"
                "   finished_at = now(), lease_owner = NULL, lease_until = NULL"
                "   FROM w WHERE s.task_id = w.task_id AND s.id = w.id AND s.state = 'running' AND s.lease_owner = $8"
                "   RETURNING s.task_id, s.id, w.event),"
                " ev AS (INSERT INTO events (task_id, subtask_id, kind, data)"
                "   SELECT task_id, id, event ->> 'kind', event - 'kind' FROM done)"
                " SELECT task_id, id FROM done",
                [UUID(o.task_id) for o in outcomes],
                [o.subtask_id for o in outcomes],
                [o.state for o in outcomes],
                [o.result for o in outcomes],
                [o.error for o in outcomes],
                [o.agent_id for o in outcomes],
                [o.event() for o in outcomes],
                owner,
            )
            task_states = {str(r["id"]): r["state"] for r in locked}
            stored = {(str(r["task_id"]), r["id"]) for r in rows}
            mine: list[bool] = []  # per outcome: did it change the subtask (a duplicate in the batch did not)
            done: dict[str, list[Outcome]] = {}
            for o in outcomes:
                mine.append((o.task_id, o.subtask_id) in stored)
                stored.discard((o.task_id, o.subtask_id))
                if mine[-1]:
                    done.setdefault(o.task_id, []).append(o)
            transitions = {
                task_id: await self._advance(
                    conn,
                    UUID(task_id),
                    task_states[task_id],
                    changed=[o.subtask_id for o in theirs],
                    failed=[o.subtask_id for o in theirs if o.state != SubtaskState.SUCCEEDED],
                )
                for task_id, theirs in done.items()
            }
            for task_id, transition in transitions.items():
                if transition.task_state:
                    transition.view = await self._close(conn, task_id, closing)
        return [
            (transitions.pop(o.task_id, None) or Transition()) if changed else None
            for o, changed in zip(outcomes, mine, strict=True)
        ]

    async def _advance(
        self, conn: asyncpg.Connection, tid: UUID, task_state: str, changed: list[str], failed: list[str]
    ) -> Transition:
        """After ``changed`` became terminal (``failed`` of them without success): skip what can no longer run,
        release what now can, and finish the task when nothing is left open. Runs under the task's row lock, in
        a statement after the change, so a join whose dependencies finish at the same time in two processes is
        released exactly once."""
        out = Transition()
        for failed_id in failed:  # one at a time, so each skipped subtask names the failure that doomed it
            rows = await conn.fetch(
                "WITH RECURSIVE doomed(id) AS ("
                "  SELECT id FROM subtasks WHERE task_id = $1 AND depends_on @> ARRAY[$2::text]"
                "  UNION SELECT s.id FROM subtasks s JOIN doomed d ON s.depends_on @> ARRAY[d.id]"
                "  WHERE s.task_id = $1)"
                " UPDATE subtasks SET state = 'skipped', finished_at = now(),"
                "  error = 'not run: dependency ' || $2 || ' did not succeed'"
                " WHERE task_id = $1 AND id IN (SELECT id FROM doomed) AND state = 'pending' RETURNING id",
                tid,
                failed_id,
            )
            skipped = [r["id"] for r in rows]
            if skipped:
                out.skipped += skipped
                await self._event(conn, tid, None, "subtasks_skipped", {"ids": skipped, "because": [failed_id]})
        if task_state != TaskState.RUNNING:
            return out
        rows = await conn.fetch(
            "WITH released AS ("
            "  UPDATE subtasks s SET state = " + RELEASE.format(flag="s.requires_approval") + ", ready_at = now()"
            "  FROM tasks t WHERE t.id = s.task_id AND s.task_id = $1 AND s.state = 'pending'"
            "  AND (s.depends_on && $2::text[] OR s.after_ids && $2::text[])"
            "  AND NOT EXISTS (SELECT 1 FROM subtasks d WHERE d.task_id = $1 AND d.id = ANY(s.depends_on)"
            "    AND d.state <> 'succeeded')"
            "  AND NOT EXISTS (SELECT 1 FROM subtasks d WHERE d.task_id = $1 AND d.id = ANY(s.after_ids)"
            "    AND d.state = ANY($3))"
            "  RETURNING s.id, s.pool, s.rank, t.priority, s.state),"
            " finished AS ("
            "  UPDATE tasks SET finished_at = now(), state = CASE WHEN EXISTS (SELECT 1 FROM subtasks"
            "    WHERE task_id = $1 AND state <> 'succeeded') THEN 'failed' ELSE 'succeeded' END"
            "  WHERE id = $1 AND state = 'running' AND NOT EXISTS (SELECT 1 FROM released)"
            "  AND NOT EXISTS (SELECT 1 FROM subtasks WHERE task_id = $1 AND finished_at IS NULL)"
            "  RETURNING state),"
            " ev AS (INSERT INTO events (task_id, kind) SELECT $1, 'task_' || state FROM finished)"
            " SELECT id, pool, rank, priority, state AS released_as, NULL AS final FROM released"
            " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, state FROM finished",
            tid,
            [*changed, *out.skipped],
            list(OPEN_STATES),
        )
        for r in rows:
            if r["final"] is not None:
                out.task_state = r["final"]
            elif r["released_as"] == SubtaskState.AWAITING_APPROVAL:
                await self._awaiting(conn, tid, [r["id"]])
            else:
                out.released.append(Ready(str(tid), r["id"], r["pool"], r["rank"], r["priority"]))
        return out

    async def schedule_retry(
        self, task_id: str, subtask_id: str, owner: str, error: str, delay_s: float, agent_id: str | None
    ) -> bool:
        """Put a failed attempt back as ready after ``delay_s`` (the queue's delayed set carries it)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE subtasks SET state = 'ready', error = $4, last_agent_id = coalesce($6, last_agent_id),"
                " not_before = now() + make_interval(secs => $5), ready_at = now() + make_interval(secs => $5),"
                " lease_owner = NULL, lease_until = NULL"
                " WHERE task_id = $1 AND id = $2 AND state = 'running' AND lease_owner = $3 RETURNING attempts",
                UUID(task_id),
                subtask_id,
                owner,
                error,
                delay_s,
                agent_id,
            )
            if row is not None:
                await self._event(
                    conn,
                    UUID(task_id),
                    subtask_id,
                    "subtask_retry",
                    {"attempt": row["attempts"], "error": error, "delay_s": round(delay_s, 3), "agent_id": agent_id},
                )
        return row is not None

    async def release_lease(self, task_id: str, subtask_id: str, owner: str) -> bool:
        """Give a claimed subtask back untouched (this process is shutting down mid-call)."""
        result = await self.pool.execute(
            "UPDATE subtasks SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_owner = NULL,"
            " lease_until = NULL WHERE task_id = $1 AND id = $2 AND state = 'running' AND lease_owner = $3",
            UUID(task_id),
            subtask_id,
            owner,
        )
        return result.endswith(" 1")

    # ------------------------------------------------------------------ approvals
    async def _awaiting(self, conn: asyncpg.Connection, tid: UUID, ids: list[str]) -> None:
        for subtask_id in ids:
            await self._event(conn, tid, subtask_id, "subtask_awaiting_approval", {})

    async def decide(
        self, task_id: str, subtask_id: str, approve: bool, by: str, reason: str, closing: Closing
    ) -> Transition | None:
        """A person's decision on a subtask awaiting approval, with its event, in one transaction: approved, it
        is ready (``released``); rejected, it is skipped with everything that depends on it, and the task may
        end. None when it was not awaiting approval (already decided, never asked, or gone)."""
        tid = UUID(task_id)
        async with self.pool.acquire() as conn, conn.transaction():
            task = await conn.fetchrow("SELECT state, priority FROM tasks WHERE id = $1 FOR UPDATE", tid)
            if task is None:
                return None
            error = None if approve else f"rejected by {by}: {reason}" if reason else f"rejected by {by}"
            row = await conn.fetchrow(
                "UPDATE subtasks SET decided_by = $3, state = CASE WHEN $4 THEN 'ready' ELSE 'skipped' END,"
                " ready_at = CASE WHEN $4 THEN now() ELSE ready_at END,"
                " finished_at = CASE WHEN $4 THEN NULL ELSE now() END, error = $5"
                " WHERE task_id = $1 AND id = $2 AND state = 'awaiting_approval' RETURNING pool, rank",
                tid,
                subtask_id,
                by,
                approve,
                error,
            )
            if row is None:
                return None
            kind = "subtask_approved" if approve else "subtask_rejected"
            await self._event(conn, tid, subtask_id, kind, {"by": by, **({"reason": reason} if reason else {})})
            if approve:
                return Transition(released=[Ready(task_id, subtask_id, row["pool"], row["rank"], task["priority"])])
            transition = await self._advance(conn, tid, task["state"], changed=[subtask_id], failed=[subtask_id])
            if transition.task_state:
                transition.view = await self._close(conn, task_id, closing)
            return transition

    async def awaiting_approval(self, task_id: str) -> list[str]:
        """The task's subtasks awaiting approval."""
        rows = await self.pool.fetch(
            "SELECT id FROM subtasks WHERE task_id = $1 AND state = 'awaiting_approval' ORDER BY seq", UUID(task_id)
        )
        return [r["id"] for r in rows]

    async def overdue_approvals(self, older_than_s: float, limit: int = 100) -> list[tuple[str, str]]:
        """(task, subtask) pairs that have awaited approval longer than ``older_than_s``."""
        rows = await self.pool.fetch(
            "SELECT task_id, id FROM subtasks WHERE state = 'awaiting_approval'"
            " AND ready_at < now() - make_interval(secs => $1) ORDER BY ready_at LIMIT $2",
            older_than_s,
            limit,
        )
        return [(str(r["task_id"]), r["id"]) for r in rows]

    # ------------------------------------------------------------------ cancellation and deadlines
    async def cancel_task(self, task_id: str, reason: str, final_state: TaskState, closing: Closing) -> bool:
        """Stop a running task: every unfinished subtask becomes cancelled, and the task ends in ``final_state``
        with its closing message, in one transaction. False if it had already ended."""
        tid = UUID(task_id)
        async with self.pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(
                "UPDATE tasks SET state = $2, error = $3, finished_at = now() WHERE id = $1 AND state = 'running'"
                " RETURNING id",
                tid,
                final_state,
                reason,
            )
            if changed is None:
                return False
            await conn.execute(
                "UPDATE subtasks SET state = 'cancelled', error = $2, finished_at = now(), lease_owner = NULL,"
                " lease_until = NULL WHERE (task_id, id) IN (SELECT task_id, id FROM subtasks"
                ' WHERE task_id = $1 AND finished_at IS NULL ORDER BY id COLLATE "C" FOR UPDATE)',  # as claim_many
                tid,
                reason,
            )
            await self._event(conn, tid, None, f"task_{final_state}", {"reason": reason})
            await self._close(conn, task_id, closing)
        return True

    async def _close(self, conn: asyncpg.Connection, task_id: str, closing: Closing) -> TaskView:
        """Write a task's closing message, inside the transaction that ends it (readers never see one alone);
        the finished view, message included, for whoever finishes the task (no second read)."""
        view = await self._task_view(conn, task_id)
        view.message = closing(view)
        await conn.execute("UPDATE tasks SET message = $2 WHERE id = $1", UUID(task_id), view.message)
        return view

    async def orphans(self, all_queued: bool, lease_expired_s: float) -> list[tuple[Ready, float]]:
        """Open subtasks of running tasks that may have lost their stream message, with the seconds left of
        their backoff: every queued one when ``all_queued`` (Redis lost its data), and running ones whose lease
        ran out more than ``lease_expired_s`` ago (a live stream message would have been reclaimed by then)."""
        rows = await self.pool.fetch(
            "SELECT s.task_id, s.id, s.pool, s.rank, t.priority,"
            " greatest(0, extract(epoch FROM s.not_before - now()))::float8 AS delay"
            " FROM subtasks s JOIN tasks t ON t.id = s.task_id WHERE t.state = 'running' AND s.finished_at IS NULL"
            " AND ((s.state = 'queued' AND $1)"
            "  OR (s.state = 'running' AND s.lease_until < now() - make_interval(secs => $2)))",
            all_queued,
            lease_expired_s,
        )
        return [
            (Ready(str(r["task_id"]), r["id"], r["pool"], r["rank"], r["priority"]), r["delay"] or 0.0) for r in rows
        ]

    async def running_tasks(self) -> tuple[int, float]:
        """(tasks running now, age in seconds of the oldest of them)."""
        row = await self.pool.fetchrow(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest"
            " FROM tasks WHERE state = 'running'"
        )
        return int(row["n"]), float(row["oldest"])

    async def overdue_tasks(self) -> list[str]:
        rows = await self.pool.fetch("SELECT id FROM tasks WHERE state = 'running' AND deadline < now() LIMIT 100")
        return [str(r["id"]) for r in rows]

    # ------------------------------------------------------------------ views
    async def task_exists(self, task_id: str) -> bool:
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM tasks WHERE id = $1)", UUID(task_id)))

    async def task_state(self, task_id: str) -> str | None:
        return await self.pool.fetchval("SELECT state FROM tasks WHERE id = $1", UUID(task_id))

    async def progress(self, task_id: str) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT state, count(*) AS n FROM subtasks WHERE task_id = $1 GROUP BY state", UUID(task_id)
        )
        return {r["state"]: r["n"] for r in rows}

    async def task_view(self, task_id: str, include_subtasks: bool = True) -> TaskView:
        async with self.pool.acquire() as conn:
            return await self._task_view(conn, task_id, include_subtasks)

    @staticmethod
    async def _task_view(conn: asyncpg.Connection, task_id: str, include_subtasks: bool = True) -> TaskView:
        tid = UUID(task_id)
        task = await conn.fetchrow("SELECT * FROM tasks WHERE id = $1", tid)
        if task is None:
            raise errors.NotFound(f"no task {task_id}")
        subtasks = []
        if include_subtasks:
            found = await conn.fetch("SELECT * FROM subtasks WHERE task_id = $1 ORDER BY seq", tid)
            counts = dict(Counter(r["state"] for r in found))  # the rows are here: no second query to count them
            for r in found:
                subtasks.append(
                    SubtaskView(
                        id=r["id"],
                        tool=r["tool"],
                        pool=r["pool"],
                        state=r["state"],
                        depends_on=r["depends_on"],
                        attempts=r["attempts"],
                        agent_id=r["agent_id"],
                        arguments=r["arguments"],
                        requires_approval=r["requires_approval"],
                        decided_by=r["decided_by"],
                        result=r["result"],
                        error=r["error"],
                        started_at=r["started_at"],
                        finished_at=r["finished_at"],
                        duration_s=_seconds(r["started_at"], r["finished_at"]),
                    )
                )
        else:
            rows = await conn.fetch("SELECT state, count(*) AS n FROM subtasks WHERE task_id = $1 GROUP BY state", tid)
            counts = {r["state"]: r["n"] for r in rows}
        return TaskView(
            task_id=str(task["id"]),
            state=task["state"],
            goal=task["goal"],
            strategy=task["strategy"],
            priority=task["priority"],
            created_at=task["created_at"],
            finished_at=task["finished_at"],
            duration_s=_seconds(task["created_at"], task["finished_at"]),
            counts=counts,
            subtasks=subtasks,
            error=task["error"],
            planning=Planning.model_validate(task["planning"]),
            github_issue=task["github_issue"],
            message=task["message"],
            workspace=task["workspace"],
        )

    async def list_tasks(self, state: str | None, limit: int, offset: int, submitter: str | None = None) -> TaskList:
        """A page of tasks, newest first; only ``submitter``'s when given (None: everyone's, for admins)."""
        where = "($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR submitter = $2)"
        rows = await self.pool.fetch(
            "SELECT id, state, goal, created_at, finished_at, count(*) OVER () AS total FROM tasks"
            f" WHERE {where} ORDER BY created_at DESC LIMIT $3 OFFSET $4",
            state,
            submitter,
            limit,
            offset,
        )
        counts: dict[UUID, dict[str, int]] = {r["id"]: {} for r in rows}
        for c in await self.pool.fetch(  # one query for the whole page, not one per task
            "SELECT task_id, state, count(*) AS n FROM subtasks WHERE task_id = ANY($1) GROUP BY task_id, state",
            list(counts),
        ):
            counts[c["task_id"]][c["state"]] = c["n"]
        tasks = [
            TaskSummary(
                task_id=str(r["id"]),
                state=r["state"],
                goal=r["goal"],
                created_at=r["created_at"],
                finished_at=r["finished_at"],
                counts=counts[r["id"]],
            )
            for r in rows
        ]
        total = (
            rows[0]["total"]
            if rows
            else await self.pool.fetchval(f"SELECT count(*) FROM tasks WHERE {where}", state, submitter)
        )
        return TaskList(tasks=tasks, total=total, offset=offset, limit=limit)

    # ------------------------------------------------------------------ tenancy and identity
    async def task_submitter(self, task_id: str) -> tuple[bool, str | None]:
        """(exists, submitter) of a task."""
        row = await self.pool.fetchrow("SELECT submitter FROM tasks WHERE id = $1", UUID(task_id))
        return (row is not None, row["submitter"] if row else None)

    async def subtask_runner(self, task_id: str, subtask_id: str) -> tuple[str, str | None, str] | None:
        """(pool, agent_id, state) of a subtask: who is running it, if anyone."""
        row = await self.pool.fetchrow(
            "SELECT pool, agent_id, state FROM subtasks WHERE task_id = $1 AND id = $2", UUID(task_id), subtask_id
        )
        return (row["pool"], row["agent_id"], row["state"]) if row else None

    async def purge_finished(self, retention_days: int, batch: int = 1000) -> int:
        """Delete tasks (with their subtasks and events) that finished more than ``retention_days`` ago, in
        batches so no statement holds many locks for long. Running tasks are never touched."""
        total = 0
        while True:
            deleted = await self.pool.fetchval(
                "WITH gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state <> 'running'"
                " AND finished_at < now() - make_interval(days => $1) LIMIT $2) RETURNING 1)"
                " SELECT count(*) FROM gone",
                retention_days,
                batch,
            )
            total += deleted
            if deleted < batch:
                return total

    async def subtask_ids(self, task_id: str) -> set[str]:
        rows = await self.pool.fetch("SELECT id FROM subtasks WHERE task_id = $1", UUID(task_id))
        return {r["id"] for r in rows}

    async def subtask_depth(self, task_id: str, subtask_id: str) -> int | None:
        return await self.pool.fetchval(
            "SELECT handoff_depth FROM subtasks WHERE task_id = $1 AND id = $2", UUID(task_id), subtask_id
        )

    async def handoff_chain(self, task_id: str, subtask_id: str) -> list[tuple[str, Any]]:
        """(tool, arguments) of ``subtask_id`` and each handoff parent above it."""
        rows = await self.pool.fetch(
            "WITH RECURSIVE chain(id, tool, arguments, parent_id) AS ("
            "  SELECT id, tool, arguments, parent_id FROM subtasks WHERE task_id = $1 AND id = $2"
            "  UNION ALL SELECT s.id, s.tool, s.arguments, s.parent_id FROM subtasks s"
            "  JOIN chain c ON s.id = c.parent_id WHERE s.task_id = $1)"
            " SELECT tool, arguments FROM chain",
            UUID(task_id),
            subtask_id,
        )
        return [(r["tool"], r["arguments"]) for r in rows]

    async def event(self, task_id: str, subtask_id: str | None, kind: str, data: dict[str, Any]) -> None:
        async with self.pool.acquire() as conn:
            await self._event(conn, UUID(task_id), subtask_id, kind, data)

    async def event_count(self, task_id: str) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM events WHERE task_id = $1", UUID(task_id))

    async def events(self, task_id: str, limit: int = 1000) -> list[EventView]:
        """The first ``limit`` entries of a task's event log, oldest first."""
        rows = await self.pool.fetch(
            "SELECT subtask_id, kind, data, at FROM events WHERE task_id = $1 ORDER BY id LIMIT $2",
            UUID(task_id),
            limit,
        )
        return [EventView(**dict(r)) for r in rows]

    async def events_after(
        self, task_id: str, after: int, limit: int = 500
    ) -> list[tuple[int, str | None, str, dict[str, Any]]]:
        """(id, subtask id, kind, data) of a task's events with ids above ``after``, oldest first."""
        rows = await self.pool.fetch(
            "SELECT id, subtask_id, kind, data FROM events WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            UUID(task_id),
            after,
            limit,
        )
        return [(r["id"], r["subtask_id"], r["kind"], r["data"]) for r in rows]

    async def _event(
        self, conn: asyncpg.Connection, tid: UUID, subtask_id: str | None, kind: str, data: dict[str, Any]
    ) -> None:
        await conn.execute(
            "INSERT INTO events (task_id, subtask_id, kind, data) VALUES ($1, $2, $3, $4)", tid, subtask_id, kind, data
        )

    # ------------------------------------------------------------------ GitHub tracking
    async def claim_tracking(self, every_s: float, max_failures: int, limit: int) -> list[tuple[str, int | None]]:
        """Tracked tasks due for a sync, claimed so that other Reynolds processes skip them this round."""
        rows = await self.pool.fetch(
            "UPDATE tasks SET github_synced_at = now() WHERE id IN ("
            " SELECT id FROM tasks WHERE track_in_github AND NOT github_closed AND github_failures < $2"
            " AND (github_synced_at IS NULL OR github_synced_at < now() - make_interval(secs => $1))"
            " ORDER BY github_synced_at NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, github_issue",
            every_s,
            max_failures,
            limit,
        )
        return [(str(r["id"]), r["github_issue"]) for r in rows]

    async def tracked(self, task_id: str, issue: int, closed: bool) -> None:
        await self.pool.execute(
            "UPDATE tasks SET github_issue = $2, github_closed = $3 WHERE id = $1", UUID(task_id), issue, closed
        )

    async def tracking_failed(self, task_id: str, error: str) -> None:
        tid = UUID(task_id)
        await self.pool.execute("UPDATE tasks SET github_failures = github_failures + 1 WHERE id = $1", tid)
        async with self.pool.acquire() as conn:
            await self._event(conn, tid, None, "github_sync_failed", {"error": error[:500]})

    # ------------------------------------------------------------------ learning
    async def record_stats(self, outcomes: Sequence[tuple[str, str, bool, float, str | None]]) -> None:
        """Fold call outcomes (pool, tool, ok, seconds, error) into tool_stats, in order, in one round trip."""
        if not outcomes:
            return
        await self.pool.executemany(
            "INSERT INTO tool_stats AS t (pool, tool, successes, failures, total_seconds, ewma_seconds, last_error)"
            " VALUES ($1, $2, $3::int, 1 - $3::int, $4::float8, CASE WHEN $3::int = 1 THEN $4::float8 END, $5)"
            " ON CONFLICT (pool, tool) DO UPDATE SET successes = t.successes + $3::int,"
            " failures = t.failures + 1 - $3::int, total_seconds = t.total_seconds + $4,"
            " ewma_seconds = CASE WHEN $3::int = 1 THEN coalesce(0.8 * t.ewma_seconds + 0.2 * $4, $4)"
            " ELSE t.ewma_seconds END,"
            " last_error = coalesce($5, t.last_error), updated_at = now()",
            [(pool, tool, int(ok), seconds, error) for pool, tool, ok, seconds, error in outcomes],
        )

    async def duration_estimates(self) -> dict[tuple[str, str], float]:
        rows = await self.pool.fetch("SELECT pool, tool, ewma_seconds FROM tool_stats WHERE ewma_seconds IS NOT NULL")
        return {(r["pool"], r["tool"]): r["ewma_seconds"] for r in rows}

    # ------------------------------------------------------------------ workspaces (reynolds/workspaces.py)
    async def set_workspace(self, task_id: str, record: dict[str, Any]) -> None:
        await self.pool.execute("UPDATE tasks SET workspace = $2 WHERE id = $1", UUID(task_id), record)

    async def workspace_ages(self, task_ids: Sequence[str]) -> dict[str, float | None]:
        """When each stored task ended (epoch seconds; None while it runs). Ids with no task are left out."""
        rows = await self.pool.fetch(
            "SELECT id, extract(epoch FROM finished_at)::float8 AS ended FROM tasks WHERE id = ANY($1)",
            [UUID(t) for t in task_ids],
        )
        return {str(r["id"]): r["ended"] for r in rows}

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")


async def _create_database(dsn: str, password: str) -> None:
    """First start against a fresh server: create the configured database (needs CREATEDB)."""
    base, _, name = dsn.rpartition("/")
    name = name.split("?", 1)[0]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise errors.ServiceUnavailable(f"database {name!r} does not exist and is not a plain name to create")
    conn = await asyncpg.connect(f"{base}/postgres", password=password or None)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError:
        pass  # another process created it first
    finally:
        await conn.close()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _safe_dsn(dsn: str) -> str:
    return re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", dsn)
