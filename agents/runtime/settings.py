"""Agent settings from environment variables; every secret can also come from a ``*_FILE`` path."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reynolds.config import read_secret_files
from reynolds.models import POOL_NAME

# Agent types shipped with Reynolds: short name -> (AGENT_TYPE, pool, module holding register_tools).
AGENT_TYPES: dict[str, tuple[str, str, str]] = {
    "devops": ("devops-polyglot", "devops", "agents.devops.tools"),
    "platform": ("platform-specialist", "platform", "agents.platform.tools"),
    "code": ("code-intelligence", "code", "agents.code.tools"),
    "workbench": ("workbench", "workbench", "agents.workbench.tools"),
    # --- tools: the only agent holding the Docker socket (seam 9)
    "docker": ("docker", "docker", "agents.docker.tools"),
}


class AgentSettings(BaseSettings):
    """How one agent replica runs. Names match the compose file (``AGENT_TYPE``, ``MCP_ENDPOINT`` ...)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    agent_type: str = Field("workbench", description="devops | platform | code | workbench, or the long name")
    agent_id: str = Field(default_factory=socket.gethostname, description="unique per replica")
    agent_pool: str = Field(
        "",
        pattern=rf"^({POOL_NAME})?$",
        description="the pool this replica joins (its token must be that pool's); default: its type's pool",
    )
    mcp_endpoint: str = Field("", description="Reynolds' agent endpoint, e.g. http://reynolds:8080/agents/mcp")
    agent_token: str = Field("", description="this pool's agent token (or AGENT_TOKEN_FILE; README Security)")
    agent_host: str = "0.0.0.0"
    agent_port: int = 8080
    agent_url: str = Field("", description="URL Reynolds uses to reach this replica; default from hostname")
    agent_max_concurrency: int = Field(16, ge=1, le=1000)
    heartbeat_interval_s: float = Field(5.0, gt=0)
    knowledge_dir: Path = Path("/app/knowledge")
    context_dir: Path = Path("/app/context")
    memory_dir: Path = Path("/app/memory")
    workspace_dir: Path = Path("/app/workspace")
    # --- workspace
    task_workspaces: bool = Field(
        True, description="serve calls in the task workspace their _meta names; false: agents that read no trees"
    )
    workspaces_dir: Path = Field(
        Path("/app/workspaces"), description="task workspaces Reynolds prepares (REYNOLDS_WORKSPACES_DIR), shared"
    )
    command_timeout_s: float = Field(120.0, gt=0)
    command_output_limit: int = Field(1_000_000, ge=1024)
    allowed_hosts: list[str] = Field(default_factory=list, description="extra Host headers accepted on /mcp")

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, values: dict) -> dict:
        return read_secret_files(values, ["agent_token"])

    @property
    def kind(self) -> str:
        """Short agent type name (``devops``), whichever form was configured."""
        for short, (long, _pool, _module) in AGENT_TYPES.items():
            if self.agent_type in (short, long):
                return short
        known = ", ".join(sorted(AGENT_TYPES))
        raise ValueError(f"unknown AGENT_TYPE {self.agent_type!r}; known types: {known}")

    @property
    def pool(self) -> str:
        return self.agent_pool or AGENT_TYPES[self.kind][1]

    @property
    def url(self) -> str:
        """Where Reynolds reaches this replica. By default this host's own address, which is unique per
        container on Compose, Swarm and Kubernetes networks (a hostname may not resolve there)."""
        if self.agent_url:
            return self.agent_url
        try:
            address = socket.gethostbyname(socket.gethostname())
        except OSError:
            address = "127.0.0.1"
        return f"http://{address}:{self.agent_port}/mcp"


# --- sandbox
class SandboxSettings(BaseSettings):
    """How the sandbox runs repository content (``SANDBOX_*``); see README "Security"."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    uid_base: int = Field(20000, ge=1000, description="first of the per-call sandbox uids")
    uids: int = Field(64, ge=1, le=4096, description="how many uids (concurrent commands) from uid_base")
    gid: int = Field(20000, ge=1000, description="group of every sandbox uid; workspaces are shared with it")
    setpriv: str = Field("setpriv", description="util-linux setpriv that switches to a sandbox uid")
    home_root: Path = Field(Path("/tmp/reynolds-sandbox-home"), description="per-uid HOME and TMPDIR live here")
    allow_unsandboxed: bool = Field(False, description="local development only: run commands as the agent itself")
    git_allow_file: bool = Field(False, description="let git use the file transport (clone local paths)")
    cpu_s: int = Field(600, ge=1, description="RLIMIT_CPU of a command, seconds")
    memory_mb: int = Field(4096, ge=64, description="RLIMIT_AS of a command, MiB")
    open_files: int = Field(1024, ge=16, description="RLIMIT_NOFILE of a command")
    processes: int = Field(256, ge=8, description="RLIMIT_NPROC of a sandbox uid")
    file_size_mb: int = Field(1024, ge=1, description="RLIMIT_FSIZE of a command, MiB")
