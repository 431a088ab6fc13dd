"""Tools of the platform specialist (pool ``platform``), one module per family: offline analysis of Power
Platform solution packages and deployment plans against the estate described in the context layer
(solution_tools.py), the ``pac`` CLI when it is installed (pac_tools.py), and Microsoft Graph when
credentials are configured (graph_tools.py).

Each tool function is thin: it resolves paths in the workspace, reads settings and context, and
delegates to one module (package/solution, validate, diff, plan, pac, graph)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from agents.platform import graph_tools, pac_tools, solution_tools
from agents.runtime import AgentRuntime


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    solution_tools.register(server, runtime)
    pac_tools.register(server, runtime)
    graph_tools.register(server, runtime)
