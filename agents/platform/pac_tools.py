"""The platform agent's Power Platform CLI tools (`pac solution list/export/import/check`): run through
the sandbox when pac is installed and signed in, with a clear error otherwise (pac.py)."""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agents.platform import pac
from agents.platform.environments import load_estate
from agents.platform.settings import load_settings
from agents.platform.solution_tools import PackagePath, read_package
from agents.runtime import AgentRuntime
from agents.runtime.annotations import CHANGE_REMOTE, FETCH, READ_REMOTE
from agents.runtime.errors import ToolError

EnvironmentName = Annotated[
    str, Field(min_length=1, max_length=200, description="environment name or URL from list_environments")
]


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    register_reads(server, runtime)
    register_transfers(server, runtime)


def register_reads(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=READ_REMOTE)
    async def pac_solution_list(environment: EnvironmentName) -> pac.PacResult:
        """List the solutions installed in an environment with the Power Platform CLI
        (`pac solution list`). Needs pac installed and signed in (`pac auth create`)."""
        env = load_estate(layers).require(environment)
        settings = load_settings()
        binary = pac.find_pac(settings.pac_search_path)
        return await pac.run_pac(
            runtime.sandbox, binary, ["solution", "list", "--environment", env.url], settings.pac_timeout_s
        )

    @server.tool(annotations=READ_REMOTE)
    async def pac_solution_check(
        path: PackagePath,
        output_directory: Annotated[
            str, Field(min_length=1, max_length=1024, description="workspace folder for the checker's report")
        ] = "solution-checker",
        geo: Annotated[
            str | None, Field(None, pattern=r"^[A-Za-z]+$", description="checker geography, e.g. Europe")
        ] = None,
    ) -> pac.PacResult:
        """Run the Power Apps solution checker on a package with `pac solution check`; the report (SARIF in a
        zip) is written to `output_directory` in the workspace. Needs pac installed and signed in."""
        await anyio.to_thread.run_sync(
            read_package, layers, path
        )  # a broken package is reported here, not after an upload
        out = layers.workspace_path(output_directory, must_exist=False)
        settings = load_settings()
        binary = pac.find_pac(settings.pac_search_path)
        out.mkdir(parents=True, exist_ok=True)
        args = ["solution", "check", "--path", str(layers.workspace_path(path)), "--outputDirectory", str(out)]
        args += ["--geo", geo] if geo else []
        return await pac.run_pac(runtime.sandbox, binary, args, settings.pac_timeout_s, output_path=output_directory)


def register_transfers(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers

    @server.tool(annotations=FETCH)
    async def pac_solution_export(
        name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_]+$", description="UniqueName")],
        environment: EnvironmentName,
        output: PackagePath,
        managed: bool = False,
        overwrite: bool = False,
    ) -> pac.PacResult:
        """Export a solution from an environment to a .zip in the workspace with `pac solution export`
        (managed or unmanaged). Needs pac installed and signed in."""
        env = load_estate(layers).require(environment)
        target = layers.workspace_path(output, must_exist=False)
        if target.suffix.lower() != ".zip":
            raise ToolError(f"output {output!r} must end in .zip")
        if target.exists() and not overwrite:
            raise ToolError(f"{output!r} already exists; pass overwrite=true to replace it")
        settings = load_settings()
        binary = pac.find_pac(settings.pac_search_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        args = ["solution", "export", "--name", name, "--path", str(target), "--managed", pac.flag(managed)]
        args += ["--environment", env.url] + (["--overwrite"] if overwrite else [])
        return await pac.run_pac(runtime.sandbox, binary, args, settings.pac_timeout_s, output_path=output)

    @server.tool(annotations=CHANGE_REMOTE)
    async def pac_solution_import(
        path: PackagePath,
        environment: EnvironmentName,
        activate_plugins: bool = True,
        publish_changes: bool = False,
        force_overwrite: bool = False,
    ) -> pac.PacResult:
        """Import a solution package from the workspace into an environment with `pac solution import`.
        The package is read first and the import refused if it is not a valid package or is unmanaged while
        the environment's policy allows only managed solutions. Needs pac installed and signed in."""
        env = load_estate(layers).require(environment)
        summary = await anyio.to_thread.run_sync(read_package, layers, path)
        if not summary.managed and not env.policy.allow_unmanaged:
            raise ToolError(
                f"refusing to import unmanaged {summary.unique_name} {summary.version} into {env.name}: "
                "its policy allows only managed solutions"
            )
        settings = load_settings()
        binary = pac.find_pac(settings.pac_search_path)
        args = ["solution", "import", "--path", str(layers.workspace_path(path)), "--environment", env.url]
        args += ["--activate-plugins"] if activate_plugins else []
        args += ["--publish-changes"] if publish_changes else []
        args += ["--force-overwrite"] if force_overwrite else []
        return await pac.run_pac(runtime.sandbox, binary, args, settings.pac_timeout_s)
