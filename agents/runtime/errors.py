"""Errors an agent tool raises on purpose.

    ToolError                  the tool cannot do what was asked; the message says why
    ├── NotConfigured          an external service has no credentials ("set GITHUB_TOKEN_FILE")
    ├── PathOutsideWorkspace   a path escapes the directory the tool may touch
    └── CommandFailed          a sandboxed command could not run (missing binary, timeout)

They derive from the SDK's ``ToolError``, which the SDK turns into an ``isError`` result that
carries the message (any other exception becomes a bare "Error executing tool X", its text kept
on the server). Raising one of these is how a tool answers bad input.
"""

from mcp.server.mcpserver.exceptions import ToolError as SDKToolError


class ToolError(SDKToolError):
    """The tool could not do what was asked; ``str(err)`` is the message the caller sees."""


class NotConfigured(ToolError):
    """A service the tool needs has no credentials or settings."""


class PathOutsideWorkspace(ToolError):
    """A path given to a tool resolves outside the directories it may read or write."""


class CommandFailed(ToolError):
    """A sandboxed command could not be started or did not finish in time."""
