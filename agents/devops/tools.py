"""The devops-polyglot agent's tools, one module per family: GitHub (github_tools.py), offline checks of
Compose files, Dockerfiles, workflows and secrets (check_tools.py), and git on workspace repositories
(git_tools.py). Docker lives in its own agent (agents/docker), which holds the socket; this one reads
repository content and never does.

Tool functions stay thin: validate arguments, read the knowledge/context they need, call the module
that owns the work, return a model. Findings carry rule ids whose text lives in knowledge/."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from agents.devops import check_tools, git_tools, github_tools
from agents.runtime import AgentRuntime


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    github_tools.register(server, runtime)
    check_tools.register(server, runtime)
    git_tools.register(server, runtime)
