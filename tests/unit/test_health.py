"""The per-replica circuit breaker and health counters: closed -> open after the threshold, half-open after
open_s with exactly one trial, a good trial closes, a bad one reopens."""

from __future__ import annotations

import time

from reynolds.health import Circuit, ReplicaHealth

OPEN_S = 0.1


def opened(threshold: int = 3) -> Circuit:
    c = Circuit(threshold=threshold, open_s=OPEN_S)
    for _ in range(threshold):
        c.started()
        c.failed()
    assert c.current() == "open"
    return c


def wait_half_open(c: Circuit) -> None:
    time.sleep(OPEN_S + 0.02)
    assert c.current() == "half-open"


def test_a_new_circuit_is_closed_and_allows_calls() -> None:
    c = Circuit(threshold=3, open_s=OPEN_S)
    assert c.current() == "closed" and c.allow()


def test_it_opens_after_threshold_consecutive_failures() -> None:
    c = Circuit(threshold=3, open_s=10)
    c.failed()
    c.failed()
    assert c.current() == "closed" and c.allow()
    c.failed()
    assert c.current() == "open" and not c.allow()


def test_a_success_resets_the_failure_count() -> None:
    c = Circuit(threshold=3, open_s=10)
    c.failed()
    c.failed()
    c.succeeded()
    c.failed()
    c.failed()
    assert c.current() == "closed"


def test_open_stays_open_until_open_s_has_passed() -> None:
    c = opened()
    assert not c.allow()
    assert c.current(now=c.opened_at + OPEN_S / 2) == "open"
    assert c.current(now=c.opened_at + OPEN_S + 0.001) == "half-open"


def test_half_open_allows_exactly_one_trial() -> None:
    c = opened()
    wait_half_open(c)
    assert c.allow()
    c.started()
    assert not c.allow()
    assert not c.allow()


def test_a_successful_trial_closes_the_circuit() -> None:
    c = opened()
    wait_half_open(c)
    c.started()
    c.succeeded()
    assert c.current() == "closed" and c.failures == 0
    assert c.allow()
    c.started()
    assert c.allow()  # closed: no trial limit


def test_a_failed_trial_reopens_at_once_and_restarts_the_wait() -> None:
    c = opened(threshold=5)
    first_opened = c.opened_at
    wait_half_open(c)
    c.started()
    c.failed()  # one failure is enough in half-open, whatever the threshold
    assert c.current() == "open" and not c.allow()
    assert c.opened_at > first_opened
    wait_half_open(c)
    assert c.allow()


def test_started_in_closed_state_does_not_take_a_trial() -> None:
    c = Circuit(threshold=1, open_s=OPEN_S)
    c.started()
    assert not c.trial_running
    c.failed()
    wait_half_open(c)
    assert c.allow() and not c.trial_running


def test_replica_health_goes_unhealthy_after_consecutive_probe_failures() -> None:
    h = ReplicaHealth(Circuit(3, 1.0), unhealthy_after=2)
    assert h.healthy
    h.probe_failures = 1
    assert h.healthy
    h.probe_failures = 2
    assert not h.healthy


def test_success_rate_starts_even_and_follows_outcomes() -> None:
    h = ReplicaHealth(Circuit(3, 1.0))
    assert h.success_rate == 0.5
    h.successes = 8
    assert h.success_rate == 0.9
    h.failures = 8
    assert h.success_rate == 0.5
