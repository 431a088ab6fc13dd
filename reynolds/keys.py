"""Every Redis key and channel Reynolds uses, in one place. Nothing builds a key by hand elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

CONSUMER_GROUP = "reynolds"


@dataclass(frozen=True)
class Keys:
    prefix: str = "reynolds"

    def stream(self, pool: str) -> str:
        """Stream of ready subtasks for one pool; entries are deleted once acked."""
        return f"{self.prefix}:stream:{pool}"

    @property
    def pools(self) -> str:
        """Set of every pool that has ever had an agent or a message (dispatchers read them all)."""
        return f"{self.prefix}:pools"

    @property
    def delayed(self) -> str:
        """Sorted set of retries waiting out their backoff; score = due time in ms."""
        return f"{self.prefix}:delayed"

    @property
    def dead(self) -> str:
        """Stream of subtasks that failed their last attempt (capped; for inspection)."""
        return f"{self.prefix}:dead"

    def agent(self, pool: str, agent_id: str) -> str:
        """Hash describing one registered replica; expires unless heartbeats renew it."""
        return f"{self.prefix}:agent:{pool}:{agent_id}"

    def pool_agents(self, pool: str) -> str:
        """Set of agent ids that registered in a pool (members whose hash expired are pruned on read)."""
        return f"{self.prefix}:pool:{pool}:agents"

    @property
    def pool_seen(self) -> str:
        """Hash pool -> when an agent last registered or heartbeat in it (pruning's grace; entries live as long
        as their pool)."""
        return f"{self.prefix}:pool-seen"

    def progress(self, task_id: str) -> str:
        """Pub/sub channel: one message per subtask state change of a task."""
        return f"{self.prefix}:progress:{task_id}"

    @property
    def control(self) -> str:
        """Pub/sub channel to every Reynolds process (cancellations)."""
        return f"{self.prefix}:control"

    # --- fleet: what several Reynolds processes share
    def lease(self, job: str) -> str:
        """Lease naming the one process that does ``job`` for the fleet; expires unless its holder renews it."""
        return f"{self.prefix}:lease:{job}"

    def process(self, name: str) -> str:
        """Marks a live Reynolds process; expires seconds after it stops renewing (its slots are then void)."""
        return f"{self.prefix}:process:{name}"

    def slots(self, pool: str, agent_id: str) -> str:
        """Hash: Reynolds process -> call slots it holds on one replica; dead processes' fields are dropped
        when read; the hash expires a day after its last write (a replica that went away)."""
        return f"{self.prefix}:slots:{pool}:{agent_id}"
