"""What every agent shares: settings, layers, sandboxed commands, memory, the MCP app, registration."""

from agents.runtime.context import AgentRuntime
from agents.runtime.errors import ToolError

__all__ = ["AgentRuntime", "ToolError"]
