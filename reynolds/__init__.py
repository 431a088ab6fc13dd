"""Reynolds: a self-hosted MCP orchestration service."""

__version__ = "0.1.0"
