"""Reynolds settings: environment variables prefixed ``REYNOLDS_``; every secret also from a ``*_FILE`` path."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A secret file holding only this word is "not configured", like an empty one. Docker Swarm refuses empty
# secrets, so scripts/make-secrets.sh writes it into the optional credentials nobody has filled in.
UNSET_SECRET = "unset"


def read_secret_files(values: dict, names: list[str], env_prefix: str = "", optional: Collection[str] = ()) -> dict:
    """Fill each secret ``name`` that is not set from the file ``<ENV_PREFIX><NAME>_FILE`` names (stripped).

    The one rule for every settings class (Reynolds' and the agents', in a before-validator): a file that is
    empty or holds only ``UNSET_SECRET`` leaves the secret unset, and so does a missing file for a name in
    ``optional`` (a deployment may leave an optional secret out); a missing required file raises OSError."""
    for name in names:
        if values.get(name):
            continue
        path = values.get(f"{name}_file") or os.environ.get(f"{env_prefix}{name.upper()}_FILE")
        if not path:
            continue
        try:
            value = Path(path).read_text().strip()  # OSError names the path; callers say which setting
        except FileNotFoundError:
            if name in optional:
                continue
            raise
        if value and value != UNSET_SECRET:
            values[name] = value
    return values


class Settings(BaseSettings):
    """Every knob, with the default a single-machine install wants. See README "Settings"."""

    model_config = SettingsConfigDict(env_prefix="REYNOLDS_", extra="ignore")

    # --- network
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(
        1, ge=1, le=64, description="processes sharing the port and the queue (reynolds/workers.py); 1 = no supervisor"
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost:*", "127.0.0.1:*", "[::1]:*", "reynolds:*"],
        description="Host headers accepted on /mcp and /agents/mcp (DNS-rebinding protection)",
    )
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://localhost:*", "http://127.0.0.1:*"])

    # --- credentials (each also REYNOLDS_<NAME>_FILE)
    client_tokens: str = Field("", description="client tokens file: '<token> [name] [scopes]' per line")
    agent_token: str = Field("", description="legacy shared agent token; only with REYNOLDS_AGENT_AUTH=shared")
    database_password: str = ""

    # --- state
    database_url: str = "postgresql://postgres@127.0.0.1:5432/reynolds"
    database_schema: str = Field("public", description="Postgres schema holding Reynolds' tables")
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("reynolds", description="prefix of every Redis key, so installs can share a Redis")

    # --- plans
    max_subtasks: int = Field(10_000, ge=1)
    max_depth: int = Field(200, ge=1, description="longest dependency chain allowed in a plan")
    max_argument_bytes: int = Field(256_000, ge=64, description="JSON size of one subtask's arguments")

    # --- bad input (reynolds/payload.py, reynolds/plan.py)
    max_result_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="JSON size of one stored result; a larger one is kept as a preview"
    )
    max_resolved_argument_bytes: int = Field(
        32 * 1024 * 1024, ge=64, description="JSON size of one subtask's arguments once $from values are filled in"
    )

    # --- dispatch
    call_timeout_s: float = Field(300.0, gt=0, description="default per-call timeout")
    max_attempts: int = Field(4, ge=1, description="attempts per subtask for transport errors and timeouts")
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    visibility_timeout_s: float = Field(30.0, gt=0, description="a message not renewed for this long is reclaimed")
    no_replica_wait_s: float = Field(60.0, gt=0, description="how long a subtask waits for any usable replica")
    prefetch: int = Field(64, ge=1, description="messages a dispatcher holds per pool beyond running calls")
    drain_timeout_s: float = Field(20.0, ge=0, description="on shutdown, how long in-flight calls may finish")

    # --- lifecycle
    default_task_timeout_s: float = Field(
        86_400.0, gt=0, description="a task submitted without timeout_s fails after this long"
    )
    unreachable_grace_s: float = Field(
        120.0, gt=0, description="Postgres or Redis unreachable for longer: /health fails and the process exits 1"
    )

    # --- agents and health
    heartbeat_ttl_s: float = Field(15.0, gt=0)
    probe_interval_s: float = Field(5.0, gt=0)
    unhealthy_after: int = Field(3, ge=1, description="consecutive failed probes or calls before unhealthy")
    circuit_open_s: float = Field(10.0, gt=0, description="how long an open circuit rejects calls")
    pools_file: Path | None = Field(None, description="YAML file declaring extra pools (MCP servers)")

    # --- pools: TLS to agents and extra pools
    ca_file: FilePath | None = Field(None, description="PEM CAs trusted for HTTPS to replicas, with the system's")

    # --- loop prevention
    max_handoff_depth: int = Field(5, ge=0)
    max_handoff_subtasks: int = Field(50, ge=1, description="subtasks one handoff may add")
    max_events_per_task: int = Field(100_000, ge=100)

    # --- scaling (Docker API: the socket must be mounted into Reynolds)
    compose_project: str | None = Field(None, description="compose project to scale; found from labels if unset")
    autoscale: bool = Field(False, description="size agent pools from queue depth and age")
    autoscale_pools: list[str] = Field(default_factory=lambda: ["devops", "platform", "code"])
    autoscale_min: int = Field(1, ge=0)
    autoscale_max: int = Field(10, ge=1)
    autoscale_interval_s: float = Field(15.0, gt=0)

    # --- fleet (several Reynolds processes on one queue)
    leader_ttl_s: float = Field(
        10.0, gt=0, description="fleet lease (autoscaler, fleet gauges): a dead holder is replaced after this long"
    )

    # --- GitHub tracking (orchestrate track_in_github=true)
    github_token: str = Field("", description="token that may write issues in github_repo")
    github_repo: str = Field("", pattern=r"^([\w.-]+/[\w.-]+)?$", description="owner/name of the tracking repo")
    github_base_url: str = Field("https://api.github.com", description="GitHub Enterprise: https://HOST/api/v3")

    # --- workspace (reynolds/workspaces.py)
    workspaces_dir: Path = Field(
        Path("/app/workspaces"), description="task workspaces, shared with every agent (their WORKSPACES_DIR)"
    )
    projects_dir: Path = Field(Path("/app/projects"), description='root of workspace {"project": name}')
    workspace_ttl_s: float = Field(86_400.0, gt=0, description="a finished task's workspace is removed after this")
    workspace_max_bytes: int = Field(2_000_000_000, ge=1024, description="size cap of one task's workspace")
    workspace_diff_max_bytes: int = Field(1_000_000, ge=1024, description="diff shown in a result (full size told)")
    workspace_read_max_bytes: int = Field(5_000_000, ge=1024, description="largest file the workspace resource reads")
    workspace_git_transports: list[str] = Field(
        default_factory=lambda: ["https", "ssh"], description="git URL transports a workspace may clone from"
    )
    workspace_allow_file_urls: bool = Field(False, description="also clone file:// URLs (tests, local mirrors)")
    workspace_clone_timeout_s: float = Field(600.0, gt=0, description="longest a workspace clone may take")
    workspace_project_exclude: list[str] = Field(
        default_factory=lambda: [".reynolds", ".venv"], description="names never copied from a project"
    )
    # --- identity and tenancy
    agent_key: str = Field("", description="key the per-pool agent tokens are derived from (README Security)")
    agent_auth: Literal["pool", "shared"] = Field("pool", description="pool tokens, or the legacy shared token")
    agent_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        description="CIDRs a registered agent URL may resolve to",
    )
    pool_grace_s: float = Field(300.0, gt=0, description="an empty, unused, undeclared pool is pruned after this")
    approve_destructive: bool = Field(
        False, description="every call of a destructive tool waits for a person's approval, as requires_approval"
    )
    approval_timeout_s: float = Field(
        3600, gt=0, description="a subtask awaiting approval this long is rejected (its dependents skipped)"
    )
    retention_days: int = Field(30, ge=1, description="finished tasks are purged after this many days")
    purge_interval_s: float = Field(300.0, gt=0, description="how often expired tasks and stale pools are purged")

    # --- experiments
    experiments_dir: Path = Field(Path("experiments"), description="where run_experiment finds scenario files by name")
    experiment_lease_s: float = Field(
        30.0, gt=0, le=3600, description="a crashed process's experiment is resumed by another after this long"
    )

    # --- presentation
    personality: Literal["on", "off"] = "on"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="console (readable, coloured) on a terminal and json otherwise, unless set"
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, values: dict) -> dict:
        names = ["client_tokens", "agent_token", "agent_key", "database_password", "github_token"]
        values = read_secret_files(values, names, "REYNOLDS_", optional=["github_token"])
        for name in names:  # a stray space or newline around a token is never part of it
            if isinstance(values.get(name), str):
                values[name] = values[name].strip()
        return values

    @property
    def client_token_list(self) -> list[str]:
        """The tokens of the client tokens file (first field of each line; see ``auth.parse_client_tokens``)."""
        lines = (line.split("#", 1)[0].split() for line in self.client_tokens.splitlines())
        return [fields[0] for fields in lines if fields]

    @property
    def secrets(self) -> list[str]:
        """Values the log redactor must never print."""
        named = [self.agent_token, self.agent_key, self.database_password, self.github_token]
        return [s for s in [*self.client_token_list, *named] if s]
