"""The code agent's LLM tools: new code and refactorings from an OpenAI-compatible model, following the
team standards (generation.py); they need OPENAI_API_KEY_FILE and say so without it."""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.code import generation, llm
from agents.code.generation import GeneratedCode, Refactoring
from agents.code.sources import read_source, relative, workspace_target, write_output
from agents.code.standards import load_standards
from agents.runtime import AgentRuntime
from agents.runtime.annotations import LLM_WRITE
from agents.runtime.errors import ToolError

MAX_CONTEXT_FILES = 10


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=LLM_WRITE)
    async def generate_code(
        instruction: Annotated[str, Field(min_length=3, max_length=20_000, description="what the code must do")],
        language: Annotated[str, Field(min_length=1, max_length=40)] = "python",
        context_paths: Annotated[
            list[str] | None, Field(description="workspace files the new code builds on (sent to the model)")
        ] = None,
        output_path: Annotated[str | None, Field(description="write the code to this workspace file")] = None,
        overwrite: bool = False,
    ) -> GeneratedCode:
        """Write new code with the configured LLM (OpenAI-compatible API) following the team standards;
        Python output is syntax-checked. Optionally writes it into the workspace. Needs
        OPENAI_API_KEY_FILE; without it this tool fails with 'LLM not configured'."""
        llm.load_settings()  # fail before reading files when the model is not configured
        standards = load_standards(runtime).python
        paths = context_paths or []
        if len(paths) > MAX_CONTEXT_FILES:
            raise ToolError(f"at most {MAX_CONTEXT_FILES} context_paths; got {len(paths)}")
        context = []
        for p in paths:
            file = workspace_target(layers, p)
            if not file.is_file():
                raise ToolError(f"context path {p!r} is not a file")
            context.append((relative(layers, file), read_source(file, p)))
        if sum(len(text) for _, text in context) > generation.MAX_PROMPT_SOURCE_CHARS:
            raise ToolError(f"context files exceed {generation.MAX_PROMPT_SOURCE_CHARS} characters; send fewer")
        result = await generation.generate(instruction, language, context, standards)
        if output_path:
            result.written_to = await anyio.to_thread.run_sync(
                write_output, layers, output_path, result.code, overwrite
            )
        return result

    @server.tool(annotations=LLM_WRITE)
    async def refactor_code(
        path: Annotated[str, Field(min_length=1, max_length=1000, description="one file in the workspace")],
        instruction: Annotated[str, Field(min_length=3, max_length=20_000, description="what to change")],
        apply: Annotated[bool, Field(description="write the proposal over the file (Python must parse)")] = False,
    ) -> Refactoring:
        """Propose a rewrite of one workspace file with the configured LLM: returns the new content and a
        unified diff; writes the file only with apply=true, and never writes Python that does not
        parse. Needs OPENAI_API_KEY_FILE; without it this tool fails with 'LLM not configured'."""
        llm.load_settings()
        standards = load_standards(runtime).python
        target = workspace_target(layers, path)
        if not target.is_file():
            raise ToolError(f"{path!r} is not a file; refactor_code works on one file")
        shown = relative(layers, target)
        current = read_source(target, shown)
        if len(current) > generation.MAX_PROMPT_SOURCE_CHARS:
            raise ToolError(
                f"{shown} has {len(current)} characters; the limit for one request is "
                f"{generation.MAX_PROMPT_SOURCE_CHARS}"
            )
        result = await generation.refactor(shown, current, instruction, standards)
        if apply and result.changed:
            if result.syntax_ok is False:
                raise ToolError(f"not applied: the proposed {shown} does not parse ({result.syntax_error})")
            await anyio.Path(target).write_text(result.new_content, encoding="utf-8")
            result.applied = True
            result.summary += "; applied"
        return result
