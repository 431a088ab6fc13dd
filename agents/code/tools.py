"""The code-intelligence agent's tools (pool ``code``), one module per family: read-only analysis
(analysis_tools.py), programs run in the sandbox — ruff, pytest and the review (quality_tools.py) — and
LLM generation and refactoring (generation_tools.py). Each tool is thin: it resolves paths inside the
workspace, reads the team standards from context, and hands the work to one module of this package.
Local tools always work; generation, refactoring and the model's part of a review need an
OpenAI-compatible LLM (OPENAI_API_KEY_FILE)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from agents.code import analysis_tools, generation_tools, quality_tools
from agents.runtime import AgentRuntime


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    analysis_tools.register(server, runtime)
    quality_tools.register(server, runtime)
    generation_tools.register(server, runtime)
