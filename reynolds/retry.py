"""Retry policy: what one attempt's raw outcome means. Pure functions, no I/O; the engine applies them.

- the tool answered without ``isError``: the subtask succeeded;
- the tool answered with ``isError``: it failed, unless the plan marked it ``retryable``;
- a retryable ``DispatchError`` (transport error, timeout, unavailable agent) or an unexpected internal
  error: retried with exponential backoff and jitter until ``max_attempts``, then dead-lettered;
- anything else (``RemoteError``: a JSON-RPC error answer; ``NoReplica``; a bad ``$from``): failed at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from reynolds import errors
from reynolds.models import Attempt


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"  # the attempt's error is final
    GAVE_UP = "gave_up"  # retryable, but out of attempts: fail and dead-letter


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    error: str | None = None  # what the subtask's error says
    reason: str = ""  # metric label: why it was retried


def judge(attempt: Attempt, max_attempts: int) -> Decision:
    """Decide one attempt. ``max_attempts`` is the setting; the subtask's own limit wins when it has one."""
    result, err, claim = attempt.result, attempt.error, attempt.claim
    if result is not None and not result.is_error:
        return Decision(Verdict.SUCCEEDED)
    if result is not None:
        text = tool_text(result) or "tool reported an error"
        retryable, reason = claim.retryable, "tool_error"
    elif isinstance(err, errors.DispatchError):
        text, retryable, reason = str(err), err.retryable, type(err).__name__
    elif isinstance(err, errors.ReynoldsError):
        return Decision(Verdict.FAILED, str(err))
    else:
        text, retryable, reason = f"internal error: {type(err).__name__}: {err}", True, "internal"
    if not retryable:
        return Decision(Verdict.FAILED, text)
    if claim.attempts >= (claim.max_attempts or max_attempts):
        return Decision(Verdict.GAVE_UP, f"{text} (gave up after {claim.attempts} attempts)")
    return Decision(Verdict.RETRY, text, reason)


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter, so the retries of a failed burst do not all arrive together."""
    return min(max_s, base_s * 2 ** (attempts - 1)) * (0.5 + random.random())


def replica_at_fault(error: Exception | None) -> bool:
    """Whether an attempt's error counts against the replica's circuit (a JSON-RPC error answer does not)."""
    return isinstance(error, errors.DispatchError) and not isinstance(error, errors.RemoteError | errors.NoReplica)


def tool_text(result: object) -> str:
    """The text parts of a tool result, joined."""
    content = getattr(result, "content", [])
    return "\n".join(getattr(c, "text", "") for c in content if getattr(c, "type", "") == "text")
