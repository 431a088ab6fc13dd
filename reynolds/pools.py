"""Extra pools declared in a YAML file: any MCP server, by URL or by stdio command, routed to like an agent.

pools:
  - name: files
    command: ["python", "-m", "my_mcp_server"]   # stdio; one child per Reynolds process and replica
    env: {ROOT: /data}
    replicas: 1
  - name: search
    urls: [http://search-1:8000/mcp, http://search-2:8000/mcp]   # replicas of one pool (or `url:` for one)
    token_file: /run/secrets/search_token       # optional bearer token
    health_url: /health                         # optional, resolved against each URL
    max_concurrency: 8

This module owns the file: parsing it (every field checked, the file size bounded) and applying it to the
registry, at start-up and again on SIGHUP. A reload that cannot be read keeps the pools in use.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urljoin, urlsplit

import anyio
import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from reynolds import errors
from reynolds.models import POOL_NAME

if TYPE_CHECKING:
    from reynolds.registry import Registry, Replica
    from reynolds.sessions import Sessions

log = structlog.get_logger("reynolds.pools")
MAX_FILE_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 2000  # of a validation report: a junk file must not flood the log
MAX_URLS = 32

EnsureGroup = Callable[[str], Awaitable[None]]


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url[:200]!r} is not an http(s) URL with a host")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return url


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=rf"^{POOL_NAME}$")
    url: str | None = Field(None, max_length=2000)
    urls: list[Annotated[str, Field(max_length=2000)]] | None = Field(None, min_length=1, max_length=MAX_URLS)
    health_url: str | None = Field(None, max_length=2000)
    command: list[str] | None = Field(None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    token_file: Path | None = None
    replicas: int = Field(1, ge=1, le=32)
    max_concurrency: int = Field(8, ge=1, le=1000)
    _token: str | None = PrivateAttr(None)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else _check_url(url)

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str] | None) -> list[str] | None:
        if urls is None:
            return None
        if len(set(urls)) != len(urls):
            raise ValueError("each URL may appear once")
        return [_check_url(u) for u in urls]

    @model_validator(mode="after")
    def _one_transport(self) -> PoolSpec:
        if sum(x is not None for x in (self.url, self.urls, self.command)) != 1:
            raise ValueError("give exactly one of 'url', 'urls' or 'command'")
        if self.command is None and self.replicas != 1:
            raise ValueError("'replicas' applies to stdio pools; list a URL pool's replicas in 'urls'")
        if self.health_url is not None:
            if self.command is not None:
                raise ValueError("'health_url' applies to URL pools")
            if urlsplit(self.health_url).scheme and len(self.replica_urls) > 1:
                raise ValueError("with several 'urls', give 'health_url' as a path (e.g. /health) for each")
            _check_url(self.health_for(self.replica_urls[0]) or "")
        return self

    @property
    def replica_urls(self) -> list[str]:
        return self.urls or ([self.url] if self.url else [])

    def health_for(self, url: str) -> str | None:
        """The health URL of the replica at ``url``: ``health_url`` resolved against it (None: MCP ping only)."""
        return urljoin(url, self.health_url) if self.health_url else None

    @model_validator(mode="after")
    def _read_token(self) -> PoolSpec:
        # read once, now: an unreadable token file is an error in the pools file, not a failure at the first call
        self._token = self.token_file.read_text().strip() if self.token_file else None
        return self

    @property
    def token(self) -> str | None:
        return self._token


class PoolsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pools: list[PoolSpec] = Field(default_factory=list)


def load_pools(path: Path | None) -> list[PoolSpec]:
    if path is None:
        return []
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        data = yaml.safe_load(raw) or {}
        specs = PoolsFile.model_validate(data).pools
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValidationError is a ValueError
        raise errors.InvalidRequest(f"pools file {path}: {_bounded(err)}") from err
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise errors.InvalidRequest(f"pools file {path}: pool names must be unique")
    return specs


def _bounded(err: Exception) -> str:
    text = str(err) if not isinstance(err, ValidationError) else str(err).replace("\n", "; ")
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …"


async def apply_pools(
    specs: Sequence[PoolSpec], registry: Registry, sessions: Sessions, ensure_group: EnsureGroup
) -> None:
    """Make the registry's static replicas the ones ``specs`` describe; connect the new ones (learning their
    tools) and close the removed ones. A replica that cannot be reached is kept, unhealthy, for the probes."""
    added, removed = registry.set_static(specs)
    for replica in removed:
        sessions.drop(replica.key)
        log.info("extra pool replica removed", pool=replica.pool, replica=replica.agent_id, url=replica.url)
    async with anyio.create_task_group() as tg:
        for replica in added:
            tg.start_soon(_connect, replica, registry, sessions, ensure_group)


async def _connect(replica: Replica, registry: Registry, sessions: Sessions, ensure_group: EnsureGroup) -> None:
    await ensure_group(replica.pool)
    try:
        await sessions.get(replica.endpoint(registry.settings))
    except errors.ReynoldsError as err:
        registry.mark_unhealthy(replica)
        log.error("extra pool unavailable", pool=replica.pool, replica=replica.agent_id, error=str(err))
        return
    log.info("extra pool connected", pool=replica.pool, replica=replica.agent_id, tools=len(replica.tools))


async def reload_on_sighup(
    path: Path | None, registry: Registry, sessions: Sessions, ensure_group: EnsureGroup
) -> None:
    """Re-read the pools file on every SIGHUP. A file that does not load is reported and the old pools kept."""
    with anyio.open_signal_receiver(signal.SIGHUP) as signals:
        async for _ in signals:
            if path is None:
                log.warning("SIGHUP: no pools file configured (REYNOLDS_POOLS_FILE); nothing to reload")
                continue
            try:
                specs = load_pools(path)
            except errors.InvalidRequest as err:
                log.error("pools file not reloaded; the pools in use are kept", error=str(err))
                continue
            await apply_pools(specs, registry, sessions, ensure_group)
            log.info("pools file reloaded", pools=[s.name for s in specs])
