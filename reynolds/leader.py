"""Leadership of the jobs one Reynolds process should do for the whole fleet (autoscaling, fleet gauges).

A Redis lease: ``SET key holder NX PX ttl`` takes it when free; a check-and-set script renews it only for its
holder; a check-and-delete releases it on shutdown. A holder that dies stops renewing, the key expires after
``ttl_s``, and the next process that tries takes over. The local belief :attr:`Lease.held` is counted from
before each request was sent, so it always runs out before the key in Redis can: two processes never both
believe they lead (a stalled holder may act on its belief at most until then).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import anyio
import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("reynolds.leader")

TAKE_OR_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease:
    """One named lease; :meth:`run` keeps trying to hold it (renewing every ``ttl_s / 3``) until cancelled."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        holder: str,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock
        self._valid_until = 0.0
        self._take = redis.register_script(TAKE_OR_RENEW)
        self._release = redis.register_script(RELEASE)

    @property
    def held(self) -> bool:
        return self.clock() < self._valid_until

    async def try_hold(self) -> bool:
        """Take the lease if it is free or renew it if this process holds it; whether this process holds it."""
        was = self.held
        sent = self.clock()
        try:
            ok = await self._take(keys=[self.key], args=[self.holder, int(self.ttl_s * 1000)])
        except (OSError, aioredis.RedisError) as err:
            # the outcome is unknown: keep the old belief, which runs out on its own before the key can
            log.warning("lease renewal failed", lease=self.key, error=str(err))
        else:
            self._valid_until = sent + self.ttl_s if ok else 0.0
        if self.held and not was:
            log.info("lease taken", lease=self.key, holder=self.holder)
        elif was and not self.held:
            log.info("lease lost", lease=self.key, holder=self.holder)
        return self.held

    async def release(self) -> None:
        """Give the lease up now (if held) so that another process takes over without waiting for expiry."""
        self._valid_until = 0.0
        await self._release(keys=[self.key], args=[self.holder])

    async def run(self) -> None:
        try:
            while True:
                await self.try_hold()
                await anyio.sleep(self.ttl_s / 3)
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(OSError, aioredis.RedisError):
                await self.release()
