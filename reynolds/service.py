"""The running service: builds every component from settings and runs the background loops.

Each loop rides out a lost Redis or Postgres on its own (it logs, waits and tries again). What the
service cannot ride out ends it loudly: a loop that stops, or Postgres or Redis unreachable for
longer than ``unreachable_grace_s``, calls ``Service.fail``: ``fatal`` says why (``/health`` answers
503 with it) and ``on_fatal`` stops the process, which then exits non-zero."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx2
import redis.asyncio as aioredis
import structlog
from anyio.abc import TaskGroup
from prometheus_client import CollectorRegistry

from reynolds import errors, gauges, retention, tracking, workspaces
from reynolds.autoscale import Autoscaler, Policy, PoolLoad
from reynolds.config import Settings
from reynolds.dispatch import Dispatcher, consumer_name
from reynolds.engine import Engine
from reynolds.experiments.runner import ExperimentRunner
from reynolds.keys import Keys
from reynolds.leader import Lease
from reynolds.metrics import Metrics
from reynolds.models import TaskState
from reynolds.pools import apply_pools, load_pools, reload_on_sighup
from reynolds.queue import TaskQueue
from reynolds.registry import Registry
from reynolds.scaling import ScaleResult, scale_pool
from reynolds.sessions import Sessions, tls_context
from reynolds.store import Store
from reynolds.tracking import GitHubTracker

log = structlog.get_logger("reynolds.service")
PING_TIMEOUT_S = 5.0


@dataclass
class Service:
    settings: Settings
    redis: aioredis.Redis
    store: Store
    keys: Keys
    queue: TaskQueue
    registry: Registry
    sessions: Sessions
    engine: Engine
    dispatcher: Dispatcher
    metrics: Metrics
    leader: Lease  # the fleet lease: autoscaling and fleet gauges
    on_fatal: Callable[[str], None] = lambda reason: None
    fatal: str | None = field(default=None, init=False)

    def fail(self, reason: str) -> None:
        """The service cannot go on: say why (``fatal``, /health) and have the process stop (``on_fatal``)."""
        if self.fatal is None:
            self.fatal = reason
            self.metrics.ready.set(0)
            log.error("reynolds cannot run; stopping", reason=reason)
            self.on_fatal(reason)

    async def ready(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {}
        try:
            with anyio.fail_after(PING_TIMEOUT_S):
                await self.store.ping()
                pending = await self.store.migrations_pending()
            checks["postgres"] = "ok"
            checks["migrations"] = "ok" if not pending else f"pending: {', '.join(pending)}"
        except Exception as err:
            checks["postgres"] = f"error: {err!r}"
        try:
            with anyio.fail_after(PING_TIMEOUT_S):
                await self.redis.ping()
            checks["redis"] = "ok"
        except Exception as err:
            checks["redis"] = f"error: {err!r}"
        ok = all(v == "ok" for v in checks.values())
        self.metrics.ready.set(1 if ok else 0)
        return ok, checks


async def connect_redis(url: str) -> aioredis.Redis:
    redis = aioredis.from_url(url, health_check_interval=30)
    try:
        await redis.ping()
    except (OSError, aioredis.RedisError) as err:
        await redis.aclose()
        raise errors.ServiceUnavailable(f"cannot reach Redis at {url}: {err}") from err
    return redis


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    registry_for_metrics: CollectorRegistry | None = None,
    on_fatal: Callable[[str], None] = lambda reason: None,
) -> AsyncIterator[Service]:
    """Connect, migrate, start the dispatcher and upkeep loops; on exit drain and close everything.
    ``on_fatal(reason)`` is called (once) when the service cannot go on."""
    store = await Store.connect(settings.database_url, settings.database_password, settings.database_schema)
    redis = await connect_redis(settings.redis_url)
    try:
        applied = await store.migrate()
        if applied:
            log.info("migrations applied", migrations=applied)
        keys = Keys(settings.key_prefix)
        metrics = Metrics(registry_for_metrics or CollectorRegistry())
        queue = TaskQueue(redis, keys)
        registry = Registry(redis, keys, settings)
        async with anyio.create_task_group() as tg:
            sessions = Sessions(tg, tls_context(settings.ca_file))
            engine = Engine(settings, store, queue, registry, redis, keys, metrics, consumer_name())
            dispatcher = Dispatcher(settings, engine, store, queue, registry, sessions, metrics, redis, keys)
            leader = Lease(redis, keys.lease("fleet"), registry.slots.process, settings.leader_ttl_s)
            service = Service(
                settings, redis, store, keys, queue, registry, sessions, engine, dispatcher, metrics, leader, on_fatal
            )
            await _connect_static_pools(service)
            tg.start_soon(
                _guarded,
                service,
                "pools reload",
                lambda: reload_on_sighup(settings.pools_file, registry, sessions, queue.ensure_group),
            )
            tg.start_soon(_guarded, service, "waiters", engine.waiters.run)
            tg.start_soon(_guarded, service, "dispatcher", dispatcher.run)
            tg.start_soon(_guarded, service, "slots", lambda: registry.slots.run(registry.replicas))
            tg.start_soon(_guarded, service, "leader", leader.run)
            tg.start_soon(_guarded, service, "upkeep", lambda: _upkeep(service, tg))
            tg.start_soon(_guarded, service, "watchdog", lambda: _watch_dependencies(service))
            tg.start_soon(_guarded, service, "experiments", ExperimentRunner(service).run)  # drives, resumes them
            tg.start_soon(_guarded, service, "workspaces", lambda: workspaces.expire_forever(settings, store))
            if settings.autoscale:
                tg.start_soon(_guarded, service, "autoscaler", _autoscaler(service).run)
            try:
                yield service
            finally:
                with anyio.CancelScope(shield=True):
                    await dispatcher.stop()
                    await sessions.close_all()
                tg.cancel_scope.cancel()
    finally:
        await redis.aclose()
        await store.close()


async def _guarded(service: Service, name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run a loop that should run for as long as the service does; if it ends or raises, the service fails
    (never a live process whose dispatcher is gone)."""
    try:
        await loop()
    except Exception as err:
        log.exception("background loop crashed", loop=name)
        service.fail(f"{name} loop crashed: {type(err).__name__}: {err}")
        return
    if service.fatal is None and not service.dispatcher.stopping:
        service.fail(f"{name} loop ended")


async def _watch_dependencies(service: Service) -> None:
    """Fail the service when Postgres or Redis stays unreachable past the grace (a restart is the way out)."""
    grace = service.settings.unreachable_grace_s
    down_since: dict[str, float] = {}
    while True:
        _, checks = await service.ready()
        now = time.monotonic()
        for name in ("postgres", "redis"):
            if checks.get(name) == "ok":
                down_since.pop(name, None)
            elif now - down_since.setdefault(name, now) > grace:
                service.fail(f"{name} unreachable for more than {grace:g} s: {checks[name]}")
        await anyio.sleep(1.0)


async def _connect_static_pools(service: Service) -> None:
    """Open each extra pool from the pools file and learn its tools; a pool that fails is reported, not fatal."""
    specs = load_pools(service.settings.pools_file)
    await apply_pools(specs, service.registry, service.sessions, service.queue.ensure_group)


async def scale(service: Service, pool: str, replicas: int) -> ScaleResult:
    """Set a pool's replica count through the Docker API (blocking SDK calls run in a worker thread)."""
    return await anyio.to_thread.run_sync(scale_pool, pool, replicas, service.settings.compose_project)


def _autoscaler(service: Service) -> Autoscaler:
    async def read_load(pool: str) -> PoolLoad:
        depth, age = await service.queue.depth(pool)
        return PoolLoad(depth=depth, oldest_age_s=age, replicas=len(await service.registry.replicas(pool)))

    s = service.settings
    return Autoscaler(
        s.autoscale_pools,
        read_load,
        lambda pool, n: scale(service, pool, n),
        Policy(min_replicas=s.autoscale_min, max_replicas=s.autoscale_max),
        interval_s=s.autoscale_interval_s,
        leads=lambda: service.leader.held,
    )


async def _sync_tracking(service: Service, tracker: GitHubTracker) -> None:
    """One round of GitHub tracking: open, update or close the issues of tracked tasks that are due."""
    due = await service.store.claim_tracking(tracking.SYNC_EVERY_S, tracking.MAX_FAILURES, tracking.BATCH)
    for task_id, issue in due:
        view = await service.store.task_view(task_id)
        try:
            number = await tracker.sync(view, issue)
        except Exception as err:
            service.metrics.github_failures.inc()
            log.warning("github tracking failed", task_id=task_id, error=tracking.describe(err))
            await service.store.tracking_failed(task_id, tracking.describe(err))
            continue
        await service.store.tracked(task_id, number, closed=view.state != TaskState.RUNNING)


async def _upkeep(service: Service, tg: TaskGroup) -> None:
    """Probe replicas, sweep orphans and deadlines, refresh gauges — each on its own cadence."""

    async def every(seconds: float, what: str, fn) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                await fn()
            except Exception as err:
                log.warning("upkeep failed", what=what, error=str(err))
            await anyio.sleep(seconds)

    async with httpx2.AsyncClient(verify=service.sessions.tls) as http:
        probe = functools.partial(service.registry.probe_all, service.sessions, http)
        tg.start_soon(every, service.settings.probe_interval_s, "probe", probe)
        tg.start_soon(every, 2.0, "sweep", service.engine.sweep)
        tg.start_soon(every, 1.0, "stats", service.engine.flush_stats)
        tg.start_soon(every, 0.05, "events", service.engine.flush_events)
        settings = service.settings
        if settings.github_token and settings.github_repo:
            tracker = GitHubTracker(settings.github_token, settings.github_repo, settings.github_base_url)
            tg.start_soon(every, 1.0, "github", lambda: _sync_tracking(service, tracker))
        tg.start_soon(every, 2.0, "gauges", lambda: gauges.refresh(service))
        tg.start_soon(every, 5.0, "ready", service.ready)
        tg.start_soon(every, settings.purge_interval_s, "retention", lambda: retention.forget(service))
        await anyio.sleep_forever()
