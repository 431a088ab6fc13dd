"""Call slots on agent replicas, shared by every Reynolds process: the fleet never runs more than a replica's
``max_concurrency`` calls on it at once, whichever processes send them.

Each process holds slots on a replica in Redis (hash ``Keys.slots``: process -> slots held) and takes more
with one script that never lets the holdings of live processes exceed the replica's ``max_concurrency``
(holdings of a process whose ``Keys.process`` key expired are dropped by that script). Why shared counters
and not the ``inflight`` agents report in heartbeats: a heartbeat is seconds old, so two processes would both
see a replica idle and both fill it; only an atomic take can keep the cap.

It costs little: a process reuses the slots it holds for its next calls without asking Redis again, and hands
back only those that stayed unused for a whole ``FLUSH_S`` (one batched write). A steady stream of calls costs
no Redis round trip; a call after a lull costs one.

Fairness: a refused take marks its process as waiting; while another process waits, a process asks Redis for
every call and gets no more than a fair share, so one process's backlog cannot keep a replica from another's.

Load, for choosing among replicas = this process's own calls (exact, now, so its own burst is seen at once) +
the slots other processes hold (read with every take and every ``VIEW_S``, so at most that stale). Holdings
are reservations, so the view errs towards busy, never towards idle.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import redis.asyncio as aioredis
import structlog

from reynolds.keys import Keys

if TYPE_CHECKING:
    from reynolds.registry import Replica

log = structlog.get_logger("reynolds.slots")
PROCESS_TTL_S = 5.0  # a dead process's slots are void this long after its last renewal
RENEW_S = 1.0
FLUSH_S = 0.05
VIEW_S = 0.5
HASH_TTL_MS = 86_400_000

WAIT_MS = 1000  # a refused take marks its process as waiting for this long

# KEYS: the replica's slots hash, this process's liveness key.
# ARGV: process name, slots it wants in all, the replica's max, liveness-key prefix, process ttl ms, hash ttl ms,
# wait ms. Fields: <process> = slots held; wait:<process> = until when (ms) that process waits for a slot.
# While others wait, a process gets no more than a fair share: max / (processes holding or waiting).
# Returns {granted, slots other processes hold, processes other than this one waiting}.
TAKE = """
local me, want, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('set', KEYS[2], '1', 'PX', ARGV[5])
local t = redis.call('time')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local others, waiting, contenders = 0, 0, {[me] = true}
local fields = redis.call('hgetall', KEYS[1])
for i = 1, #fields, 2 do
  local p, v = fields[i], tonumber(fields[i + 1])
  local waiter = string.match(p, '^wait:(.*)$')
  if waiter then
    if v <= now then
      redis.call('hdel', KEYS[1], p)
    elseif waiter ~= me then
      waiting = waiting + 1
      contenders[waiter] = true
    end
  elseif p ~= me then
    if redis.call('exists', ARGV[4] .. p) == 1 then
      others = others + v
      contenders[p] = true
    else
      redis.call('hdel', KEYS[1], p)
    end
  end
end
local n = 0
for _ in pairs(contenders) do n = n + 1 end
if others + want > max or (waiting > 0 and want > math.ceil(max / n)) then
  redis.call('hset', KEYS[1], 'wait:' .. me, now + tonumber(ARGV[7]))
  redis.call('pexpire', KEYS[1], ARGV[6])
  return {0, others, waiting}
end
redis.call('hset', KEYS[1], me, want)
redis.call('hdel', KEYS[1], 'wait:' .. me)
redis.call('pexpire', KEYS[1], ARGV[6])
return {1, others, waiting}
"""


@dataclass
class Holding:
    held: int = 0  # slots this process holds in Redis
    used: int = 0  # calls this process runs on the replica now
    spare_low: int = 0  # fewest unused held slots since the last flush: those are handed back
    others: int = 0  # slots other live processes hold, as last read
    contended_until: float = 0.0  # while others wait for a slot, every call asks Redis (fair shares)


class Slots:
    def __init__(self, redis: aioredis.Redis, keys: Keys, process: str | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.process = process or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._take = redis.register_script(TAKE)
        self._lock = anyio.Lock()  # one write of this process's holdings at a time, so none overtakes another
        self._holdings: dict[tuple[str, str], Holding] = {}

    def of(self, r: Replica) -> Holding:
        return self._holdings.setdefault((r.pool, r.agent_id), Holding())

    def free(self, r: Replica) -> int:
        """Calls this process could start on ``r`` now, as far as it knows."""
        h = self.of(r)
        return max(0, r.max_concurrency - h.others - h.used)

    def busy(self, r: Replica) -> int:
        """Calls on ``r`` across the fleet: this process's own now, others' slots as last read."""
        h = self.of(r)
        return h.others + h.used

    def load(self, r: Replica) -> float:
        """Share of ``r``'s slots in use or reserved across the fleet."""
        return self.busy(r) / r.max_concurrency

    async def take(self, r: Replica) -> bool:
        """Make sure this process holds a slot for one more call on ``r`` (then ``started`` uses it)."""
        h = self.of(r)
        if h.held > h.used and time.monotonic() >= h.contended_until:
            return True
        async with self._lock:
            if h.held > h.used and time.monotonic() >= h.contended_until:
                return True
            want = h.used + 1
            try:
                ok, others, waiting = await self._take(
                    keys=[self.keys.slots(r.pool, r.agent_id), self.keys.process(self.process)],
                    args=[
                        self.process,
                        want,
                        r.max_concurrency,
                        self.keys.process(""),
                        _ms(PROCESS_TTL_S),
                        HASH_TTL_MS,
                        WAIT_MS,
                    ],
                )
            except (OSError, aioredis.RedisError) as err:
                log.warning("cannot take a slot", agent=r.key, error=str(err))
                return False
            h.others = int(others)
            if waiting:
                h.contended_until = time.monotonic() + WAIT_MS / 1000
            if ok:
                h.held = want  # what Redis holds for this process now (less than before if contended)
                h.spare_low = min(h.spare_low, h.held - h.used)
            return bool(ok)

    def started(self, r: Replica) -> None:
        h = self.of(r)
        h.used += 1
        h.spare_low = min(h.spare_low, h.held - h.used)

    def finished(self, r: Replica) -> None:
        self.of(r).used -= 1

    async def flush(self) -> None:
        """Hand back the slots that stayed unused since the last flush."""
        async with self._lock:
            returned = []
            for (pool, agent_id), h in self._holdings.items():
                if h.spare_low > 0:
                    h.held -= h.spare_low
                    returned.append((self.keys.slots(pool, agent_id), h.held))
                h.spare_low = max(0, h.held - h.used)
            if not returned:
                return
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, held in returned:
                    if held:
                        pipe.hset(key, self.process, held)
                    else:
                        pipe.hdel(key, self.process)
                await pipe.execute()

    async def renew(self) -> None:
        """Mark this process alive, and write its holdings again: after Redis lost its data they are back
        within ``RENEW_S`` (until then other processes may over-commit the replicas this one is using)."""
        async with self._lock, self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.process(self.process), 1, px=_ms(PROCESS_TTL_S))
            for (pool, agent_id), h in self._holdings.items():
                if h.held:
                    pipe.hset(self.keys.slots(pool, agent_id), self.process, h.held)
                    pipe.pexpire(self.keys.slots(pool, agent_id), HASH_TTL_MS)
            await pipe.execute()

    async def refresh(self, replicas: Sequence[Replica]) -> None:
        """Re-read what other processes hold on each replica."""
        if not replicas:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for r in replicas:
                pipe.hgetall(self.keys.slots(r.pool, r.agent_id))
            rows = await pipe.execute()
        for r, row in zip(replicas, rows, strict=True):
            h = self.of(r)
            fields = {k.decode(): int(v) for k, v in row.items()}
            h.others = sum(v for k, v in fields.items() if k != self.process and not k.startswith("wait:"))
            if any(k.startswith("wait:") and k != f"wait:{self.process}" for k in fields):
                h.contended_until = time.monotonic() + WAIT_MS / 1000

    async def release_all(self) -> None:
        """On shutdown, once calls have drained: drop every holding of this process and its liveness mark."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for pool, agent_id in self._holdings:
                pipe.hdel(self.keys.slots(pool, agent_id), self.process, f"wait:{self.process}")
            pipe.delete(self.keys.process(self.process))
            await pipe.execute()
        self._holdings.clear()

    async def run(self, replicas: Callable[[], Awaitable[list[Replica]]]) -> None:
        """Keep this process marked alive, the view of others fresh, and unused slots handed back."""
        renew_at = view_at = 0.0
        try:
            while True:
                now = time.monotonic()
                try:
                    if now >= renew_at:
                        await self.renew()
                        renew_at = now + RENEW_S
                    if now >= view_at:
                        await self.refresh(await replicas())
                        view_at = now + VIEW_S
                    await self.flush()
                except (OSError, aioredis.RedisError) as err:
                    log.warning("slot upkeep failed", error=str(err))
                await anyio.sleep(FLUSH_S)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.release_all()
                except (OSError, aioredis.RedisError) as err:
                    log.warning("cannot release slots; they lapse on their own", error=str(err))


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
