"""Per-replica health as this process sees it: a circuit breaker fed by call outcomes and a
consecutive-failure counter fed by active probes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

CircuitState = Literal["closed", "half-open", "open"]
CIRCUIT_GAUGE = {"closed": 0, "half-open": 1, "open": 2}


@dataclass
class Circuit:
    """closed --N failures--> open --after open_s--> half-open --trial ok--> closed (trial fails: open)."""

    threshold: int
    open_s: float
    state: CircuitState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    trial_running: bool = False

    def current(self, now: float | None = None) -> CircuitState:
        now = time.monotonic() if now is None else now
        if self.state == "open" and now - self.opened_at >= self.open_s:
            self.state = "half-open"
            self.trial_running = False
        return self.state

    def allow(self) -> bool:
        """May a call go to this replica now? In half-open, exactly one trial call at a time."""
        state = self.current()
        if state == "closed":
            return True
        if state == "half-open" and not self.trial_running:
            return True
        return False

    def started(self) -> None:
        if self.state == "half-open":
            self.trial_running = True

    def released(self) -> None:
        """The trial call ended without a verdict on the replica (cancelled, moved, lost its claim)."""
        self.trial_running = False

    def succeeded(self) -> None:
        self.state, self.failures, self.trial_running = "closed", 0, False

    def failed(self) -> None:
        self.failures += 1
        self.trial_running = False
        if self.state == "half-open" or self.failures >= self.threshold:
            self.state, self.opened_at = "open", time.monotonic()


@dataclass
class ReplicaHealth:
    circuit: Circuit
    probe_failures: int = 0
    unhealthy_after: int = 3
    inflight: int = 0
    successes: int = 0
    failures: int = 0

    @property
    def healthy(self) -> bool:
        return self.probe_failures < self.unhealthy_after

    @property
    def success_rate(self) -> float:
        total = self.successes + self.failures
        return (self.successes + 1) / (total + 2)  # Laplace: a new replica starts at 0.5
