"""Extra pools declared in a YAML file: any MCP server, by URL or by stdio command, routed to like an agent.

pools:
  - name: files
    command: ["python", "-m", "my_mcp_server"]   # stdio; one child per Reynolds process and replica
    env: {ROOT: /data}
    replicas: 1
  - name: search
    url: http://search:8000/mcp
    token_file: /run/secrets/search_token       # optional bearer token
    max_concurrency: 8
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reynolds import errors


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    url: str | None = None
    command: list[str] | None = Field(None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    token_file: Path | None = None
    replicas: int = Field(1, ge=1, le=32)
    max_concurrency: int = Field(8, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_transport(self) -> PoolSpec:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of 'url' or 'command'")
        if self.url and self.replicas != 1:
            raise ValueError("'replicas' applies to stdio pools; list each URL as its own pool entry instead")
        return self

    @property
    def token(self) -> str | None:
        return self.token_file.read_text().strip() if self.token_file else None


class PoolsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pools: list[PoolSpec] = Field(default_factory=list)


def load_pools(path: Path | None) -> list[PoolSpec]:
    if path is None:
        return []
    try:
        data = yaml.safe_load(path.read_text()) or {}
        specs = PoolsFile.model_validate(data).pools
    except (OSError, yaml.YAMLError, ValidationError) as err:
        raise errors.InvalidRequest(f"pools file {path}: {err}") from err
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise errors.InvalidRequest(f"pools file {path}: pool names must be unique")
    return specs
