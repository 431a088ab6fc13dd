"""A plain MCP server on the official SDK and nothing else: no /health route, no registration, no Reynolds
code. Tests run it as a process to prove that Reynolds drives any MCP server as a pool.

    python -m tests.servers.plain_mcp PORT NAME [--cert CERT --key KEY]

Tools: ``where`` (which server answered), ``picky`` (answers odd numbers with a JSON-RPC -32602 error and a
100 kB message), ``grow`` / ``shrink`` (add or remove a tool at run time and say the tool list changed).
"""

from __future__ import annotations

import argparse
import asyncio

import mcp_types as types
import uvicorn
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer


def build(name: str) -> MCPServer:
    server = MCPServer(f"plain-{name}")

    @server.tool()
    async def where(n: int = 0, delay_s: float = 0.0) -> dict[str, object]:
        """Say which server answered, after ``delay_s`` seconds."""
        await asyncio.sleep(delay_s)
        return {"server": name, "n": n}

    @server.tool()
    async def picky(value: int) -> int:
        """Return an even ``value``; an odd one is refused as invalid params."""
        if value % 2:
            raise MCPError(types.INVALID_PARAMS, "value must be even; " + "x" * 100_000)
        return value

    @server.tool()
    async def grow(tool: str, ctx: Context) -> str:
        """Add a tool named ``tool`` (it echoes its argument) and tell listening clients."""

        async def added(text: str) -> str:
            return text

        server.add_tool(added, name=tool, description="added at run time")
        await changed(ctx)
        return tool

    @server.tool()
    async def shrink(tool: str, ctx: Context) -> str:
        """Remove the tool named ``tool`` and tell listening clients."""
        server.remove_tool(tool)
        await changed(ctx)
        return tool

    return server


async def changed(ctx: Context) -> None:
    await ctx.notify_tools_changed()  # 2026-07-28: subscriptions/listen streams
    if ctx.protocol_version.startswith("2025"):
        await ctx.session.send_tool_list_changed()  # 2025-11-25: the session's notification


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("name")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    app = build(args.name).streamable_http_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
    )


if __name__ == "__main__":
    main()
