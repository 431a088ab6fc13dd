"""Every tool of every agent type carries all four MCP hints, and the ones that change or remove things
say so (Reynolds' router never picks those unasked)."""

from __future__ import annotations

import pytest

from agents.runtime.settings import AGENT_TYPES

DESTRUCTIVE = {
    "docker_restart",
    "github_update_issue",
    "github_close_issue",
    "lint_python",  # fix=true rewrites files
    "format_python",
    "generate_api_docs",  # output_path overwrites
    "generate_code",
    "refactor_code",
    "pac_solution_import",
}
OPEN_WORLD_PREFIXES = ("github_", "graph_", "pac_")


@pytest.mark.anyio
@pytest.mark.parametrize("kind", sorted(AGENT_TYPES))
async def test_every_tool_has_all_four_hints(agent_client, kind: str) -> None:
    client, _ = await agent_client(kind)
    tools = (await client.list_tools()).tools
    assert tools
    for tool in tools:
        hints = tool.annotations
        assert hints is not None, f"{kind}: {tool.name} has no annotations"
        values = (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
        assert None not in values, f"{kind}: {tool.name} leaves a hint unset: {hints}"
        assert not (hints.read_only_hint and hints.destructive_hint), tool.name
        assert hints.destructive_hint == (tool.name in DESTRUCTIVE), tool.name
        if tool.name.startswith(OPEN_WORLD_PREFIXES):
            assert hints.open_world_hint, tool.name


@pytest.mark.anyio
async def test_reads_are_read_only(agent_client) -> None:
    client, _ = await agent_client("devops")
    hints = {t.name: t.annotations for t in (await client.list_tools()).tools}
    for name in ("scan_secrets", "lint_dockerfile", "validate_compose", "lint_workflow", "git_diff", "recall"):
        assert hints[name].read_only_hint and hints[name].idempotent_hint and not hints[name].open_world_hint
    assert not hints["github_create_issue"].destructive_hint and not hints["github_create_issue"].idempotent_hint
