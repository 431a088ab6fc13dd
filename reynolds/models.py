"""Wire and view models: the plan a client sends, the task/subtask/agent views Reynolds returns, and the
records that pass between store, queue, dispatcher and engine (``Ready``, ``Claim``, ``Attempt``, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field, model_validator

SUBTASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class TaskState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SubtaskState(StrEnum):
    PENDING = "pending"  # waiting for dependencies
    AWAITING_APPROVAL = "awaiting_approval"  # could run, waits for a person to approve it (approve_subtask)
    READY = "ready"  # dependencies done, stored, not yet handed to the queue
    QUEUED = "queued"  # in a pool's stream (or waiting out a retry backoff)
    RUNNING = "running"  # claimed by a dispatcher, call in flight
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed
    CANCELLED = "cancelled"


TERMINAL_SUBTASK_STATES = frozenset(
    {SubtaskState.SUCCEEDED, SubtaskState.FAILED, SubtaskState.SKIPPED, SubtaskState.CANCELLED}
)
TERMINAL_TASK_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})

POOL_NAME = r"[a-z0-9][a-z0-9_-]{0,63}"  # how pools are named: the pools file, agents, tools, experiments
Strategy = Literal["parallel", "sequential", "auto"]


class SubtaskSpec(BaseModel):
    """One node of a plan: a tool call, what it depends on, how hard to try."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SUBTASK_ID_PATTERN, description="unique within the plan")
    tool: str = Field(min_length=1, max_length=200, description="tool name as an agent lists it")
    pool: str | None = Field(None, description="pool to run on; found from the tool when omitted")
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description='tool arguments; {"$from": "<dependency id>", "path": "a.b"} inserts a dependency\'s output',
    )
    depends_on: list[str] = Field(default_factory=list, description="ids that must succeed first")
    retryable: bool = Field(False, description="retry when the tool itself reports an error")
    timeout_s: float | None = Field(None, gt=0, le=86_400, description="per-call timeout for this subtask")
    max_attempts: int | None = Field(None, ge=1, le=20)
    requires_approval: bool = Field(False, description="wait for a person to approve it before it runs")


class Plan(BaseModel):
    """A DAG of tool calls."""

    model_config = ConfigDict(extra="forbid")

    subtasks: list[SubtaskSpec] = Field(min_length=1)


class Planning(BaseModel):
    """Where a task's plan came from."""

    planner: Literal["client", "sampling", "router"] = "client"
    notes: list[str] = Field(default_factory=list, description="what the planner left out, or why it retried")


# --- workspace (reynolds/workspaces.py)
class WorkspaceSpec(BaseModel):
    """Where a task's tree comes from: a git repository at a ref, a project directory, or nothing (scratch)."""

    model_config = ConfigDict(extra="forbid")

    git: str | None = Field(None, min_length=1, max_length=2000, description="repository URL to clone")
    ref: str | None = Field(None, min_length=1, max_length=255, description="branch, tag or commit (git only)")
    project: str | None = Field(
        None, min_length=1, max_length=1000, description="directory under the projects root (REYNOLDS_PROJECTS_DIR)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> WorkspaceSpec:
        if self.git and self.project:
            raise ValueError('a workspace is {"git": url, "ref": ...} or {"project": name}, not both')
        if self.ref and not self.git:
            raise ValueError('"ref" goes with "git"')
        return self


class WorkspaceChanges(BaseModel):
    """What the task changed in its tree, as a unified diff against the tree it started from."""

    diff: str = Field(description="the diff, cut at REYNOLDS_WORKSPACE_DIFF_MAX_BYTES")
    diff_bytes: int = Field(description="full size of the diff")
    truncated: bool
    files: list[str] = Field(description="changed paths (first 1000)")


class WorkspaceView(BaseModel):
    """A task's workspace: its source, the commit it was pinned to, where it lives, what changed."""

    source: Literal["scratch", "project", "git"]
    location: str | None = Field(None, description="project name or repository URL (credentials removed)")
    ref: str | None = None
    commit: str | None = Field(None, description="the commit a git workspace was checked out at")
    path: str = Field(description="<workspaces root>/<task id>, the same on every replica")
    size_bytes: int = 0
    notes: list[str] = Field(default_factory=list, description="what was left out when the tree was made")
    changes: WorkspaceChanges | None = Field(None, description="set when the task ends")


class PlannedSubtask(BaseModel):
    """A validated subtask: pool resolved, references turned into dependencies, rank computed."""

    id: str
    tool: str
    pool: str
    arguments: dict[str, Any]
    depends_on: list[str]
    after: list[str] = Field(default_factory=list, description="ordering only (sequential strategy)")
    retryable: bool
    timeout_s: float | None
    max_attempts: int | None
    rank: float = Field(description="estimated seconds from the start of this subtask to the end of the plan")
    requires_approval: bool = Field(False, description="asked for, or a destructive tool under the approval policy")


class PlanView(BaseModel):
    """What Reynolds would run: order, pools and the critical path."""

    planning: Planning = Field(default_factory=Planning)
    strategy: Strategy
    subtasks: list[PlannedSubtask]
    levels: list[list[str]] = Field(description="subtasks grouped by the earliest wave they can run in")
    critical_path: list[str]
    estimated_makespan_s: float
    estimated_total_work_s: float
    workspace: WorkspaceSpec | None = Field(None, description="the workspace the task would get (checked)")


class SubtaskView(BaseModel):
    id: str
    tool: str
    pool: str
    state: SubtaskState
    depends_on: list[str]
    attempts: int
    agent_id: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    requires_approval: bool = False
    decided_by: str | None = Field(None, description="who approved or rejected it")
    result: Any = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None


class EventView(BaseModel):
    """One entry of a task's append-only event log."""

    at: datetime
    kind: str = Field(description="task_submitted, subtask_succeeded, subtask_retry, loop_refused, ...")
    subtask_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class TaskView(BaseModel):
    task_id: str
    state: TaskState
    goal: str | None = None
    strategy: Strategy = "parallel"
    priority: int = 0
    created_at: datetime
    finished_at: datetime | None = None
    duration_s: float | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="subtasks per state")
    subtasks: list[SubtaskView] = Field(default_factory=list)
    error: str | None = None
    planning: Planning = Field(default_factory=Planning)
    github_issue: int | None = Field(None, description="number of the tracking issue, when tracked in GitHub")
    events: list[EventView] | None = Field(None, description="the task's event log, when asked for")
    message: str | None = Field(None, description="Reynolds' closing words on the task")
    workspace: WorkspaceView | None = Field(None, description="the task's tree: source, commit, changes")


class TaskSummary(BaseModel):
    task_id: str
    state: TaskState
    goal: str | None
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]


class TaskList(BaseModel):
    tasks: list[TaskSummary]
    total: int
    offset: int
    limit: int


class ReplicaView(BaseModel):
    agent_id: str
    url: str
    agent_type: str
    healthy: bool
    circuit: Literal["closed", "half-open", "open"]
    inflight: int
    max_concurrency: int
    last_heartbeat_s_ago: float | None
    tools: list[str]
    static: bool = Field(False, description="declared in the pools file rather than self-registered")


class PoolView(BaseModel):
    pool: str
    replicas: list[ReplicaView]
    tools: list[str]
    queue_depth: int


class AgentsView(BaseModel):
    pools: list[PoolView]


# ---------------------------------------------------------------------- records between the modules
@dataclass(frozen=True)
class Ready:
    """A subtask that may run now: what the queue needs to carry it."""

    task_id: str
    subtask_id: str
    pool: str
    rank: float
    priority: int


@dataclass
class Claim:
    task_id: str
    subtask_id: str
    tool: str
    pool: str
    arguments: dict[str, Any]
    depends_on: list[str]
    attempts: int
    max_attempts: int | None
    retryable: bool
    timeout_s: float | None
    last_agent_id: str | None
    deadline: datetime | None
    ready_at: datetime | None
    interrupted_on: str | None = None  # replica a dead dispatcher's call was on (this claim reclaims it)
    traceparent: str | None = None  # of the span that submitted the task: the call's spans join its trace


@dataclass(frozen=True)
class ClaimRequest:
    """One subtask a dispatcher wants to run, and the replica it means to run it on."""

    task_id: str
    subtask_id: str
    agent_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How one subtask ended, as a dispatcher reports it."""

    task_id: str
    subtask_id: str
    state: SubtaskState
    result: Any = None
    error: str | None = None
    agent_id: str | None = None

    def event(self) -> dict[str, Any]:
        """The event log entry: its kind and its data."""
        data = {"agent_id": self.agent_id, **({"error": self.error} if self.error else {})}
        return {"kind": f"subtask_{self.state}", **data}


@dataclass
class Transition:
    """What one finished subtask set in motion."""

    released: list[Ready] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    task_state: TaskState | None = None  # set when this transition finished the task
    view: TaskView | None = None  # the finished task as its closing message saw it, read in the same transaction


@dataclass(frozen=True)
class Attempt:
    """One call's raw outcome, as the dispatcher hands it to the engine (which decides what it means): the tool's
    result, or the error that kept the call from producing one."""

    claim: Claim
    rank: float
    priority: int
    agent_id: str | None
    result: types.CallToolResult | None = None
    error: Exception | None = None
    elapsed_s: float = 0.0
