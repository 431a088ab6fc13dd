"""Every error Reynolds raises on purpose, as one tree. Callers catch the level they care about;
retry decisions read the class, never the message.

    ReynoldsError
    ├── InvalidRequest             bad input from a client: nothing was changed
    │   ├── PlanError              the plan cannot run as written
    │   │   ├── DuplicateSubtask
    │   │   ├── UnknownDependency
    │   │   ├── CycleError         names the cycle, e.g. "a -> b -> a"
    │   │   ├── UnknownTool        no registered pool offers the tool (or the named pool lacks it)
    │   │   ├── AmbiguousTool      several pools offer it: name one with "pool"
    │   │   ├── BadReference       a {"$from": ...} that points at a non-dependency, is malformed, or (at
    │   │   │                      dispatch) finds nothing at its path: the subtask fails once
    │   │   ├── InvalidArgument    an argument the tool's input schema refuses (names subtask, field and
    │   │   │                      what was expected), or one Postgres cannot store
    │   │   └── LimitExceeded      names the setting that was exceeded
    │   ├── NotFound               no such task / agent / pool (also: another tenant's task)
    │   ├── WorkspaceError         a task's workspace cannot be made as asked (bad spec, clone failed)
    │   │   └── WorkspaceTooLarge  over REYNOLDS_WORKSPACE_MAX_BYTES (or a read over its limit)
    │   ├── LoopRefused            loop prevention refused a handoff
    │   ├── Forbidden              the token lacks the scope, or the agent the pool / replica / subtask
    │   └── UrlRefused             a registered URL outside REYNOLDS_AGENT_NETWORKS (or unusable)
    ├── DispatchError              a call to an agent did not produce a tool result
    │   ├── AgentUnavailable       no healthy replica, open circuit, connection refused   (retryable)
    │   ├── CallTimeout            the call ran past its timeout                          (retryable)
    │   ├── TransportError         the connection broke mid-call                          (retryable)
    │   ├── RemoteError            the server answered the call with a JSON-RPC error (e.g. -32602): the
    │   │                          subtask's error, not the replica's fault                (not retryable)
    │   └── NoReplica              no usable replica for no_replica_wait_s: it already waited  (not retryable)
    ├── ToolFailed                 the agent ran the tool and it reported an error (isError)
    └── ServiceUnavailable         Postgres or Redis cannot be reached
"""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError


class ReynoldsError(ToolError):
    """Base of everything Reynolds raises deliberately; ``str(err)`` is fit to show a user.

    It derives from the MCP SDK's ``ToolError`` so that, raised inside a tool, the message reaches the
    client as an ``isError`` result instead of a bare "Error executing tool"."""


class InvalidRequest(ReynoldsError):
    pass


class PlanError(InvalidRequest):
    pass


class DuplicateSubtask(PlanError):
    pass


class UnknownDependency(PlanError):
    pass


class CycleError(PlanError):
    pass


class UnknownTool(PlanError):
    pass


class AmbiguousTool(PlanError):
    pass


class BadReference(PlanError):
    pass


class LimitExceeded(PlanError):
    pass


class InvalidArgument(PlanError):
    pass


class NotFound(InvalidRequest):
    pass


class LoopRefused(InvalidRequest):
    pass


class WorkspaceError(InvalidRequest):
    pass


class WorkspaceTooLarge(WorkspaceError):
    pass


class Forbidden(InvalidRequest):
    pass


class UrlRefused(InvalidRequest):
    pass


class DispatchError(ReynoldsError):
    retryable = True


class AgentUnavailable(DispatchError):
    pass


class CallTimeout(DispatchError):
    pass


class TransportError(DispatchError):
    pass


class RemoteError(DispatchError):
    """The server answered, with a JSON-RPC error instead of a result: the call was wrong, the replica is fine."""

    retryable = False

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NoReplica(DispatchError):
    """The pool had no usable replica for ``no_replica_wait_s``; the waiting was the retrying."""

    retryable = False


class ToolFailed(ReynoldsError):
    pass


class ServiceUnavailable(ReynoldsError):
    pass
