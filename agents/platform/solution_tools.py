"""The platform agent's offline tools: solution packages (inspect, validate, diff), deployment plans,
and the estate's environments, all from the workspace and the context layer; nothing is called remotely."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from agents.platform.diff import SolutionDiff, diff
from agents.platform.environments import Environment, Policy, PublisherConvention, load_estate
from agents.platform.package import Limits, open_package
from agents.platform.plan import DeploymentPlan, PlanReport, check_plan
from agents.platform.settings import load_settings
from agents.platform.solution import ComponentTypes, SolutionSummary, load_component_types, summarize
from agents.platform.validate import ValidationReport, validate
from agents.runtime import AgentRuntime
from agents.runtime.annotations import READ
from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

COMPONENT_TYPES_FILE = "component-types.yaml"
PackagePath = Annotated[
    str,
    Field(min_length=1, max_length=1024, description="workspace-relative path of a solution .zip or unpacked folder"),
]


class EnvironmentView(BaseModel):
    name: str
    display_name: str | None
    stage: str
    type: str
    url: str
    region: str
    dataverse: bool
    policy: Policy


class EnvironmentList(BaseModel):
    environments: list[EnvironmentView]
    promotion_order: list[str]
    publisher: PublisherConvention | None
    naming: dict[str, str | None]


def component_types(layers: Layers) -> ComponentTypes:
    return load_component_types(layers.read_structured("knowledge", COMPONENT_TYPES_FILE))


def read_package(layers: Layers, path: str) -> SolutionSummary:
    """The summary of the package at workspace ``path`` (.zip or folder), read within the configured limits."""
    settings = load_settings()
    limits = Limits(
        max_archive_bytes=settings.solution_max_archive_bytes,
        max_members=settings.solution_max_members,
        max_xml_bytes=settings.solution_max_xml_bytes,
        max_ratio=settings.solution_max_compression_ratio,
    )
    return summarize(path, open_package(layers.workspace_path(path), limits), component_types(layers))


def lookup_for_plan(layers: Layers, solution: str) -> SolutionSummary | None:
    """A plan step's `solution` is a package when it exists in the workspace or looks like a path."""
    candidate = layers.workspace_path(solution, must_exist=False)
    if candidate.exists():
        return read_package(layers, solution)
    if "/" in solution or "\\" in solution or solution.lower().endswith(".zip"):
        raise ToolError(f"package {solution!r} does not exist in the workspace")
    return None


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    register_packages(server, runtime.layers)
    register_estate(server, runtime.layers)


def register_packages(server: MCPServer, layers: Layers) -> None:
    @server.tool(annotations=READ)
    def inspect_solution(path: PackagePath) -> SolutionSummary:
        """Summarise a Power Platform solution package (.zip export or unpacked folder in the workspace):
        UniqueName, display names, version, managed flag, publisher and customization prefix, root components,
        missing dependencies declared in solution.xml, and the component inventory of customizations.xml
        (tables/entities, option sets, relationships, flows/workflows, canvas and model-driven apps, web
        resources, security roles, plugin assemblies and steps, connection references, environment variables)
        with counts per kind. Read-only; refuses zip bombs, oversized members and unsafe member names."""
        return read_package(layers, path)

    @server.tool(annotations=READ)
    def validate_solution(
        path: PackagePath,
        environment: Annotated[
            str | None,
            Field(None, max_length=200, description="target environment; enables its policy checks"),
        ] = None,
    ) -> ValidationReport:
        """Check a solution package against ALM rules before deployment: numeric 2-4 part version (PP001),
        missing dependencies (PP002), unmanaged solution into an environment whose policy forbids it (PP003),
        publisher prefix required by the estate (PP004), default 'new' publisher (PP005), component schema names
        without the publisher prefix (PP006) or off the naming convention (PP007), solution name convention
        (PP008), empty solution (PP009), connection references to DLP-blocked connectors (PP010).
        Conventions and policies come from context/infrastructure/environments.json and
        context/business/compliance.json. Returns findings with rule id, severity and message."""
        estate = load_estate(layers)
        env = estate.require(environment) if environment else None
        summary = read_package(layers, path)
        return validate(summary, estate, env, component_types(layers))

    @server.tool(annotations=READ)
    def diff_solutions(old: PackagePath, new: PackagePath) -> SolutionDiff:
        """Compare two versions of a solution package (.zip or folder, workspace paths): version change and
        whether it increased, managed flag and publisher changes, root components and customizations.xml
        components added / removed / changed (by XML content), and missing dependencies added or resolved."""
        return diff(read_package(layers, old), read_package(layers, new))

    @server.tool(annotations=READ)
    def check_deployment_plan(plan: DeploymentPlan) -> PlanReport:
        """Check an ordered deployment plan (steps of solution package path or UniqueName, target environment,
        managed flag, optional version) against the environments in context before running it: unknown
        environment (PLN001), unmanaged into an environment that allows only managed (PLN002), skipping the
        environments a target must be promoted from, or promoting a version that never went through them (PLN003),
        version not increasing in the same environment (PLN004), managed flag or version disagreeing with the
        package (PLN005/PLN006), missing package (PLN007), going back a stage (PLN008), bad version (PLN009)."""
        return check_plan(plan, load_estate(layers), lambda solution: lookup_for_plan(layers, solution))


def register_estate(server: MCPServer, layers: Layers) -> None:
    @server.tool(annotations=READ)
    def list_environments() -> EnvironmentList:
        """List the Power Platform environments of this estate (dev/test/prod-like) with type, stage, URL,
        region and ALM policy (unmanaged allowed, promote-from environments, solution checker, approval), plus the
        publisher prefix, naming conventions and promotion order, from context/infrastructure/environments.json."""
        estate = load_estate(layers)
        return EnvironmentList(
            environments=[_view(env) for env in estate.environments],
            promotion_order=estate.promotion_order,
            publisher=estate.publisher,
            naming=estate.naming.model_dump(),
        )


def _view(env: Environment) -> EnvironmentView:
    return EnvironmentView(**env.model_dump())
