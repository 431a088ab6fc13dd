"""The Postgres store against a real server: migrations, submission, guarded claims and finishes, release of
dependents (also under concurrent finishes), skipping, cancellation, retries, recovery, handoffs, paging and
learned durations. Each test has its own schema."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from reynolds import errors
from reynolds.models import Plan, PlannedSubtask, TaskState, TaskView
from reynolds.plan import build_plan
from reynolds.store import ClaimRequest, Outcome, Store, Transition

pytestmark = pytest.mark.anyio

CATALOG = {"echo": {"workbench"}, "lint": {"code"}}
OWNER = "dispatcher-1"
OTHER = "dispatcher-2"


def closing(view: TaskView) -> str:
    return f"closing words: {view.state}, {view.counts}"


def planned(*subtasks: dict[str, Any], strategy: str = "parallel") -> list[PlannedSubtask]:
    plan = Plan.model_validate({"subtasks": list(subtasks)})
    view = build_plan(plan, CATALOG, max_subtasks=100, max_depth=50, max_argument_bytes=10_000, strategy=strategy)
    return view.subtasks


def node(sid: str, *deps: str, tool: str = "echo", **extra: Any) -> dict[str, Any]:
    return {"id": sid, "tool": tool, "depends_on": list(deps), "arguments": {"value": sid}, **extra}


async def submit(store: Store, *subtasks: dict[str, Any], priority: int = 0, strategy: str = "parallel"):
    task_id = uuid.uuid4()
    ready = await store.create_task(
        task_id, "a goal", strategy, priority, {"subtasks": list(subtasks)}, None, planned(*subtasks, strategy=strategy)
    )
    return str(task_id), ready


async def finish(store: Store, task_id: str, sid: str, owner: str, state: str, **outcome: Any) -> Transition | None:
    """One outcome, as a dispatcher reports it (through the batched call it uses)."""
    return (await store.finish_many([Outcome(task_id, sid, state, **outcome)], owner, closing))[0]


async def run(store: Store, task_id: str, sid: str, state: str = "succeeded", result: Any = None):
    """Claim and finish one subtask as OWNER."""
    claim, why = await store.claim(task_id, sid, OWNER, 30)
    assert claim is not None, f"{sid} could not be claimed: {why}"
    return await finish(store, task_id, sid, OWNER, state, result=result, error=None if state == "succeeded" else "bad")


async def states(store: Store, task_id: str) -> dict[str, str]:
    view = await store.task_view(task_id)
    return {s.id: s.state.value for s in view.subtasks}


# ---------------------------------------------------------------- migrations


ALL_MIGRATIONS = [
    "001_core",
    "002_planning",
    "003_tracking",
    "004_hot_updates",
    "005_workspace",
    "006_identity_tenancy",
    "010_experiments",
    "011_experiment_replicas",
    "012_trace_context",
    "013_approvals",
]


async def test_migrate_is_idempotent_and_records_versions(raw_store: Store) -> None:
    assert await raw_store.migrations_pending() == ALL_MIGRATIONS
    assert await raw_store.migrate() == ALL_MIGRATIONS
    assert await raw_store.migrate() == []
    assert await raw_store.migrations_pending() == []
    rows = await raw_store.pool.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(int(m[:3]), m[4:]) for m in ALL_MIGRATIONS]
    tables = await raw_store.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", raw_store.schema
    )
    assert {r["table_name"] for r in tables} >= {"tasks", "subtasks", "events", "tool_stats", "schema_migrations"}


async def test_concurrent_migrations_apply_once(raw_store: Store) -> None:
    first, second = await asyncio.gather(raw_store.migrate(), raw_store.migrate())
    assert sorted([first, second]) == [[], ALL_MIGRATIONS]


async def test_a_schema_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match="not a plain lowercase identifier"):
        await Store.connect("postgresql://postgres@127.0.0.1:5432/test", schema="x; DROP TABLE tasks")


# ---------------------------------------------------------------- submission


async def test_create_task_stores_subtasks_and_returns_roots_as_ready(store: Store) -> None:
    task_id, ready = await submit(store, node("a"), node("b", "a"), node("c", tool="lint"), priority=3)
    assert sorted((r.subtask_id, r.pool, r.priority) for r in ready) == [("a", "workbench", 3), ("c", "code", 3)]
    assert all(r.task_id == task_id and r.rank > 0 for r in ready)
    view = await store.task_view(task_id)
    assert view.state == "running" and view.goal == "a goal" and view.priority == 3
    assert [(s.id, s.state, s.depends_on, s.arguments) for s in view.subtasks] == [
        ("a", "ready", [], {"value": "a"}),
        ("c", "ready", [], {"value": "c"}),  # stored in topological order
        ("b", "pending", ["a"], {"value": "b"}),
    ]
    assert view.counts == {"ready": 2, "pending": 1}
    kinds = [e.kind for e in await store.events(task_id)]
    assert kinds == ["task_submitted"]


async def test_unknown_task_is_not_found(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        await store.task_view(str(uuid.uuid4()))


# ---------------------------------------------------------------- claims


async def test_second_claim_of_a_held_subtask_fails_with_a_reason(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b", "a"))
    claim, why = await store.claim(task_id, "a", OWNER, 30)
    assert claim is not None and why == ""
    assert (claim.tool, claim.pool, claim.attempts, claim.arguments) == ("echo", "workbench", 1, {"value": "a"})
    again, why = await store.claim(task_id, "a", OTHER, 30)
    assert again is None and why == "leased"
    pending, why = await store.claim(task_id, "b", OWNER, 30)
    assert pending is None and why == "state pending, task running"
    missing, why = await store.claim(task_id, "zzz", OWNER, 30)
    assert missing is None and why == "gone"


async def test_claim_many_answers_in_the_order_asked_and_claims_a_duplicate_once(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b", "a"), node("c"))
    other_task, _ = await submit(store, node("x"))
    asked = [
        ClaimRequest(task_id, "a", "agent-1"),
        ClaimRequest(task_id, "b"),
        ClaimRequest(other_task, "x", "agent-2"),
        ClaimRequest(task_id, "a"),
        ClaimRequest(task_id, "zzz"),
        ClaimRequest(task_id, "c"),
    ]
    answers = await store.claim_many(asked, OWNER, 30)
    assert [(c.task_id, c.subtask_id) if c else why for c, why in answers] == [
        (task_id, "a"),
        "state pending, task running",
        (other_task, "x"),
        "leased",
        "gone",
        (task_id, "c"),
    ]
    assert answers[0][0] is not None and answers[0][0].attempts == 1
    view = await store.task_view(other_task)
    assert [(s.state.value, s.agent_id) for s in view.subtasks] == [("running", "agent-2")]


async def test_finish_many_moves_several_tasks_on_in_one_transaction(store: Store) -> None:
    first, _ = await submit(store, node("a"), node("b"), node("c", "a"), node("e", "b"), node("f", "e"))
    second, _ = await submit(store, node("p"), node("q", "p"))
    await store.claim_many([ClaimRequest(first, "a"), ClaimRequest(first, "b"), ClaimRequest(second, "p")], OWNER, 30)
    outcomes = [
        Outcome(first, "a", "succeeded", result={"v": 1}, agent_id="agent-1"),
        Outcome(second, "p", "succeeded", result={"v": 2}),
        Outcome(first, "b", "failed", error="boom", agent_id="agent-2"),
        Outcome(first, "a", "succeeded", result={"v": 3}),  # a duplicate: not stored twice
        Outcome(first, "c", "succeeded"),  # never claimed
    ]
    got = await store.finish_many(outcomes, OWNER, closing)
    a, p, b, again, c = got
    assert again is None and c is None
    assert a is not None and [r.subtask_id for r in a.released] == ["c"] and a.skipped == ["e", "f"]
    assert p is not None and [r.subtask_id for r in p.released] == ["q"]
    assert b is not None and b.released == [] and b.skipped == [] and b.task_state is None
    view = await store.task_view(first)
    by_id = {s.id: s for s in view.subtasks}
    assert by_id["a"].result == {"v": 1} and by_id["a"].agent_id == "agent-1"
    assert (by_id["b"].state.value, by_id["b"].error) == ("failed", "boom")
    assert by_id["f"].error == "not run: dependency b did not succeed"
    assert by_id["c"].state.value == "ready"
    events = [(e.subtask_id, e.kind, e.data) for e in await store.events(first) if e.kind.startswith("subtask")]
    assert events == [
        ("a", "subtask_succeeded", {"agent_id": "agent-1"}),
        ("b", "subtask_failed", {"agent_id": "agent-2", "error": "boom"}),
        (None, "subtasks_skipped", {"ids": ["e", "f"], "because": ["b"]}),
    ]


async def test_batched_claims_queueing_and_a_cancel_of_one_task_never_wait_on_each_other_in_a_cycle(
    store: Store,
) -> None:
    """Each statement takes many rows of one task at once; taken in different orders they could deadlock
    (Postgres would abort one after a second). Claims lock in key order like cancel; queueing skips locked rows."""
    rng = random.Random(7)
    for _ in range(10):
        task_id, ready = await submit(store, *(node(f"s{i}") for i in range(60)))
        shuffled = rng.sample(ready, len(ready))
        halves = [shuffled[:30], shuffled[30:]]
        outcomes = await asyncio.gather(
            store.claim_many([ClaimRequest(task_id, r.subtask_id) for r in halves[0]], OWNER, 30),
            store.claim_many([ClaimRequest(task_id, r.subtask_id) for r in reversed(halves[1])], OTHER, 30),
            store.mark_queued(rng.sample(ready, len(ready))),
            store.cancel_task(task_id, "stop", TaskState.CANCELLED, closing),
            return_exceptions=True,
        )
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        assert set((await states(store, task_id)).values()) == {"cancelled"}


async def test_an_expired_lease_can_be_reclaimed_and_the_old_owner_cannot_finish(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b", "a"))
    first, _ = await store.claim(task_id, "a", OWNER, 0.05)
    assert first is not None
    await asyncio.sleep(0.15)
    second, why = await store.claim(task_id, "a", OTHER, 30)
    assert second is not None, why
    assert second.attempts == 2
    assert await finish(store, task_id, "a", OWNER, "succeeded", result={"v": 1}) is None
    assert (await states(store, task_id))["a"] == "running"
    done = await finish(store, task_id, "a", OTHER, "succeeded", result={"v": 2})
    assert done is not None and [r.subtask_id for r in done.released] == ["b"]
    assert await store.outputs(task_id, ["a"]) == {"a": {"v": 2}}


async def test_a_different_owner_cannot_finish_a_subtask_it_does_not_hold(store: Store) -> None:
    task_id, _ = await submit(store, node("a"))
    await store.claim(task_id, "a", OWNER, 30)
    assert await finish(store, task_id, "a", OTHER, "succeeded") is None
    assert await finish(store, task_id, "a", OWNER, "succeeded") is not None
    assert await finish(store, task_id, "a", OWNER, "succeeded") is None  # already finished


async def test_renew_leases_extends_only_this_owners_running_subtasks(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b"))
    await store.claim(task_id, "a", OWNER, 0.2)
    await store.claim(task_id, "b", OTHER, 0.2)
    assert await store.renew_leases(OWNER, 30) == 1
    await asyncio.sleep(0.3)
    kept, why = await store.claim(task_id, "a", OTHER, 30)
    assert kept is None and why == "leased"
    taken, _ = await store.claim(task_id, "b", OWNER, 30)
    assert taken is not None


async def test_release_lease_gives_the_subtask_back_without_counting_an_attempt(store: Store) -> None:
    task_id, _ = await submit(store, node("a"))
    await store.claim(task_id, "a", OWNER, 30)
    assert await store.release_lease(task_id, "a", OTHER) is False
    assert await store.release_lease(task_id, "a", OWNER) is True
    assert (await states(store, task_id))["a"] == "queued"
    claim, _ = await store.claim(task_id, "a", OTHER, 30)
    assert claim is not None and claim.attempts == 1


# ---------------------------------------------------------------- release of dependents


async def test_diamond_join_is_released_only_after_both_dependencies(store: Store) -> None:
    task_id, ready = await submit(store, node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c"))
    assert [r.subtask_id for r in ready] == ["a"]
    after_a = await run(store, task_id, "a", result={"n": 1})
    assert sorted(r.subtask_id for r in after_a.released) == ["b", "c"]
    after_b = await run(store, task_id, "b")
    assert after_b.released == [] and after_b.task_state is None
    assert (await states(store, task_id))["d"] == "pending"
    after_c = await run(store, task_id, "c")
    assert [r.subtask_id for r in after_c.released] == ["d"]
    assert (await states(store, task_id))["d"] == "ready"
    after_d = await run(store, task_id, "d")
    assert after_d.released == [] and after_d.task_state == "succeeded"
    view = await store.task_view(task_id)
    assert view.state == "succeeded" and view.finished_at is not None
    assert view.message == closing(view)  # state and closing message land in one transaction


async def test_concurrent_finishes_of_both_dependencies_release_the_join_exactly_once(store: Store) -> None:
    for _ in range(5):  # a race needs several chances to show
        task_id, _ = await submit(store, node("b"), node("c"), node("d", "b", "c"))
        for sid in ("b", "c"):
            claim, _ = await store.claim(task_id, sid, OWNER, 30)
            assert claim is not None
        tb, tc = await asyncio.gather(
            finish(store, task_id, "b", OWNER, "succeeded"), finish(store, task_id, "c", OWNER, "succeeded")
        )
        released = [r.subtask_id for t in (tb, tc) for r in t.released]
        assert released == ["d"]
        assert (await states(store, task_id))["d"] == "ready"


async def test_failure_skips_transitive_dependents_and_fails_the_task(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b", "a"), node("c", "b"), node("d", "c"), node("x"))
    failed = await run(store, task_id, "a", state="failed")
    assert sorted(failed.skipped) == ["b", "c", "d"]
    assert failed.released == [] and failed.task_state is None  # x is still open
    got = await states(store, task_id)
    assert got == {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped", "x": "ready"}
    view = await store.task_view(task_id)
    assert {s.id: s.error for s in view.subtasks}["c"] == "not run: dependency a did not succeed"
    last = await run(store, task_id, "x")
    assert last.task_state == "failed"
    assert await store.task_state(task_id) == "failed"
    kinds = [e.kind for e in await store.events(task_id)]
    assert "subtasks_skipped" in kinds and kinds[-1] == "task_failed"


async def test_a_join_with_one_failed_dependency_is_skipped_not_released(store: Store) -> None:
    task_id, _ = await submit(store, node("b"), node("c"), node("d", "b", "c"))
    await run(store, task_id, "b")
    out = await run(store, task_id, "c", state="failed")
    assert out.skipped == ["d"] and out.released == []
    assert out.task_state == "failed"


async def test_sequential_subtasks_are_released_one_after_another(store: Store) -> None:
    task_id, ready = await submit(store, node("a"), node("b"), node("c"), strategy="sequential")
    order = [ready[0].subtask_id]
    assert len(ready) == 1
    while True:
        out = await run(store, task_id, order[-1], state="failed" if len(order) == 1 else "succeeded")
        if not out.released:
            break
        assert len(out.released) == 1
        order.append(out.released[0].subtask_id)
    # an ordering link is not a dependency: a failure does not skip what comes after it
    assert sorted(order) == ["a", "b", "c"]
    assert out.task_state == "failed"


# ---------------------------------------------------------------- cancellation


async def test_cancel_task_cancels_open_subtasks_once(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b"), node("c", "b"))
    await run(store, task_id, "a")
    await store.claim(task_id, "b", OWNER, 30)
    assert await store.cancel_task(task_id, "asked to stop", TaskState.CANCELLED, closing) is True
    assert await states(store, task_id) == {"a": "succeeded", "b": "cancelled", "c": "cancelled"}
    view = await store.task_view(task_id)
    assert view.state == "cancelled" and view.error == "asked to stop"
    assert view.message == closing(view)  # written in the transaction that ended the task
    assert await store.cancel_task(task_id, "again", TaskState.CANCELLED, closing) is False
    assert await finish(store, task_id, "b", OWNER, "succeeded") is None
    claim, why = await store.claim(task_id, "c", OWNER, 30)
    assert claim is None and why == "state cancelled, task cancelled"


# ---------------------------------------------------------------- retries and recovery


async def test_schedule_retry_makes_the_subtask_ready_after_not_before(store: Store) -> None:
    task_id, _ = await submit(store, node("a"))
    await store.claim(task_id, "a", OWNER, 30)
    assert await store.schedule_retry(task_id, "a", OTHER, "timeout", 0.4, "agent-1") is False
    assert await store.schedule_retry(task_id, "a", OWNER, "timeout", 0.4, "agent-1") is True
    row = await store.pool.fetchrow(
        "SELECT state, error, last_agent_id, lease_owner, not_before > now() AS later FROM subtasks WHERE id = 'a'"
    )
    assert (row["state"], row["error"], row["last_agent_id"], row["lease_owner"]) == (
        "ready",
        "timeout",
        "agent-1",
        None,
    )
    assert row["later"] is True
    early, why = await store.claim(task_id, "a", OWNER, 30)
    assert early is None and why == "early"
    assert await store.stale_ready(0.0) == []  # a retry waiting out its backoff is not orphaned
    await asyncio.sleep(0.45)
    claim, why = await store.claim(task_id, "a", OWNER, 30)
    assert claim is not None, why
    assert claim.attempts == 2 and claim.last_agent_id == "agent-1"
    assert "subtask_retry" in [e.kind for e in await store.events(task_id)]


async def test_stale_ready_finds_rows_never_handed_to_the_queue(store: Store) -> None:
    task_id, ready = await submit(store, node("a"), node("b"), node("c", "a"))
    await asyncio.sleep(0.05)
    assert await store.stale_ready(60) == []
    stale = await store.stale_ready(0.0)
    assert sorted(r.subtask_id for r in stale) == ["a", "b"]
    await store.mark_queued([r for r in ready if r.subtask_id == "a"])
    assert [r.subtask_id for r in await store.stale_ready(0.0)] == ["b"]
    assert (await states(store, task_id))["a"] == "queued"


async def test_mark_queued_does_not_undo_a_claim(store: Store) -> None:
    task_id, ready = await submit(store, node("a"))
    await store.claim(task_id, "a", OWNER, 30)
    await store.mark_queued(ready)
    assert (await states(store, task_id))["a"] == "running"


# ---------------------------------------------------------------- handoff


def extra(sid: str, *deps: str) -> PlannedSubtask:
    return PlannedSubtask(
        id=sid,
        tool="echo",
        pool="workbench",
        arguments={"value": sid},
        depends_on=list(deps),
        retryable=False,
        timeout_s=None,
        max_attempts=None,
        rank=1.0,
    )


async def test_add_subtasks_extends_a_running_task(store: Store) -> None:
    task_id, _ = await submit(store, node("a"), node("b"), priority=2)
    await run(store, task_id, "a")
    await store.claim(task_id, "b", OWNER, 30)
    ready = await store.add_subtasks(task_id, "b", 1, [extra("h1", "a"), extra("h2", "h1"), extra("h3", "b")])
    assert [(r.subtask_id, r.priority) for r in ready] == [("h1", 2)]
    got = await states(store, task_id)
    assert {k: got[k] for k in ("h1", "h2", "h3")} == {"h1": "ready", "h2": "pending", "h3": "pending"}
    assert await store.subtask_depth(task_id, "h2") == 1
    assert await store.handoff_chain(task_id, "h2") == [("echo", {"value": "h2"}), ("echo", {"value": "b"})]
    # the new subtasks keep the task running and are released like planned ones
    out = await finish(store, task_id, "b", OWNER, "succeeded")
    assert [r.subtask_id for r in out.released] == ["h3"] and out.task_state is None
    out = await run(store, task_id, "h1")
    assert [r.subtask_id for r in out.released] == ["h2"]
    view = await store.task_view(task_id)
    assert [s.id for s in view.subtasks] == ["a", "b", "h1", "h2", "h3"]  # seq continues after the plan
    assert "handoff" in [e.kind for e in await store.events(task_id)]


async def test_add_subtasks_to_a_finished_task_is_refused(store: Store) -> None:
    task_id, _ = await submit(store, node("a"))
    await run(store, task_id, "a")
    with pytest.raises(errors.InvalidRequest, match="is not running; nothing was added"):
        await store.add_subtasks(task_id, "a", 1, [extra("late")])
    assert await store.subtask_ids(task_id) == {"a"}


# ---------------------------------------------------------------- views and learning


async def test_list_tasks_pages_newest_first(store: Store) -> None:
    ids = []
    for _ in range(5):
        task_id, _ = await submit(store, node("a"))
        ids.append(task_id)
    await store.cancel_task(ids[1], "stop", TaskState.CANCELLED, closing)
    page = await store.list_tasks(None, 2, 0)
    assert [t.task_id for t in page.tasks] == [ids[4], ids[3]]
    assert (page.total, page.limit, page.offset) == (5, 2, 0)
    page = await store.list_tasks(None, 2, 2)
    assert [t.task_id for t in page.tasks] == [ids[2], ids[1]]
    page = await store.list_tasks(None, 2, 4)
    assert [t.task_id for t in page.tasks] == [ids[0]]
    beyond = await store.list_tasks(None, 2, 10)
    assert beyond.tasks == [] and beyond.total == 5
    cancelled = await store.list_tasks("cancelled", 10, 0)
    assert [t.task_id for t in cancelled.tasks] == [ids[1]] and cancelled.total == 1
    assert cancelled.tasks[0].counts == {"cancelled": 1}


async def test_record_stat_keeps_an_ewma_of_successful_durations(store: Store) -> None:
    await store.record_stats([("code", "lint", True, 10.0, None)])
    assert await store.duration_estimates() == {("code", "lint"): 10.0}
    await store.record_stats([("code", "lint", True, 20.0, None)])
    assert await store.duration_estimates() == {("code", "lint"): pytest.approx(12.0)}
    await store.record_stats([("code", "lint", False, 300.0, "timed out")])
    assert await store.duration_estimates() == {("code", "lint"): pytest.approx(12.0)}
    row = await store.pool.fetchrow("SELECT successes, failures, total_seconds, last_error FROM tool_stats")
    assert dict(row) == {"successes": 2, "failures": 1, "total_seconds": 330.0, "last_error": "timed out"}


async def test_a_failure_alone_does_not_set_a_duration_estimate(store: Store) -> None:
    # a timed-out first call says nothing about how long the tool takes when it works
    await store.record_stats([("devops", "scan", False, 300.0, "timed out")])
    assert await store.duration_estimates() == {}
    await store.record_stats([("devops", "scan", True, 2.0, None)])
    assert await store.duration_estimates() == {("devops", "scan"): pytest.approx(2.0)}


# ---------------------------------------------------------------- approvals
async def test_a_subtask_needing_approval_waits_when_it_could_run_and_approval_releases_it(store: Store) -> None:
    task_id, ready = await submit(
        store, node("root", requires_approval=True), node("a"), node("gate", "a", requires_approval=True)
    )
    assert [r.subtask_id for r in ready] == ["a"]  # the root waits for a person, not for the queue
    out = await run(store, task_id, "a")
    assert out.released == [] and out.task_state is None
    assert await states(store, task_id) == {"root": "awaiting_approval", "a": "succeeded", "gate": "awaiting_approval"}
    assert await store.awaiting_approval(task_id) == ["root", "gate"]
    claim, _ = await store.claim(task_id, "gate", OWNER, 30)
    assert claim is None  # no dispatcher can take it
    approved = await store.decide(task_id, "gate", True, "alice", "", closing)
    assert approved is not None and [r.subtask_id for r in approved.released] == ["gate"]
    assert await store.decide(task_id, "gate", False, "bob", "", closing) is None  # decided already
    view = await store.task_view(task_id)
    assert {s.id: s.decided_by for s in view.subtasks}["gate"] == "alice"
    kinds = [(e.kind, e.subtask_id) for e in await store.events(task_id)]
    assert ("subtask_awaiting_approval", "root") in kinds and ("subtask_approved", "gate") in kinds


async def test_a_rejection_skips_dependents_and_can_end_the_task(store: Store) -> None:
    task_id, _ = await submit(store, node("risky", requires_approval=True), node("after", "risky"))
    out = await store.decide(task_id, "risky", False, "alice", "too risky", closing)
    assert out is not None and out.skipped == ["after"] and out.task_state == "failed"
    assert out.view is not None and out.view.message  # the closing words, written in that transaction
    assert await states(store, task_id) == {"risky": "skipped", "after": "skipped"}
    assert {s.id: s.error for s in out.view.subtasks}["risky"] == "rejected by alice: too risky"


async def test_overdue_approvals_are_found_by_age(store: Store) -> None:
    task_id, _ = await submit(store, node("wait", requires_approval=True))
    assert await store.overdue_approvals(3600) == []
    assert await store.overdue_approvals(0) == [(task_id, "wait")]
