"""Tools of the platform specialist (pool ``platform``): offline analysis of Power Platform solution
packages and deployment plans against the estate described in the context layer, the ``pac`` CLI
when it is installed, and Microsoft Graph when credentials are configured.

Each tool function is thin: it resolves paths in the workspace, reads settings and context, and
delegates to one module (package/solution, validate, diff, plan, pac, graph)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from agents.platform import pac
from agents.platform.diff import SolutionDiff, diff
from agents.platform.environments import Environment, Policy, PublisherConvention, load_estate
from agents.platform.graph import GraphClient
from agents.platform.package import Limits, open_package
from agents.platform.plan import DeploymentPlan, PlanReport, check_plan
from agents.platform.settings import graph_credentials, load_settings
from agents.platform.solution import ComponentTypes, SolutionSummary, load_component_types, summarize
from agents.platform.validate import ValidationReport, validate
from agents.runtime import AgentRuntime
from agents.runtime.errors import ToolError

COMPONENT_TYPES_FILE = "component-types.yaml"
PackagePath = Annotated[
    str,
    Field(min_length=1, max_length=1024, description="workspace-relative path of a solution .zip or unpacked folder"),
]
EnvironmentName = Annotated[
    str, Field(min_length=1, max_length=200, description="environment name or URL from list_environments")
]
# a user id (GUID) or userPrincipalName; nothing that could change the request path
USER_ID = re.compile(r"^[A-Za-z0-9._%+'#-]+(@[A-Za-z0-9.-]+)?$")


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


class Team(BaseModel):
    id: str
    display_name: str | None
    description: str | None
    visibility: str | None


class TeamList(BaseModel):
    teams: list[Team]
    count: int
    more_available: bool


class Site(BaseModel):
    id: str
    name: str | None
    display_name: str | None
    web_url: str | None
    created: str | None


class SiteList(BaseModel):
    sites: list[Site]
    count: int
    more_available: bool


class User(BaseModel):
    id: str
    display_name: str | None
    user_principal_name: str | None
    mail: str | None
    job_title: str | None
    department: str | None
    office_location: str | None
    account_enabled: bool | None


def register_tools(server: MCPServer, runtime: AgentRuntime) -> None:
    layers = runtime.layers
    graph = GraphClient()

    def component_types() -> ComponentTypes:
        return load_component_types(layers.read_structured("knowledge", COMPONENT_TYPES_FILE))

    def read_package(path: str) -> SolutionSummary:
        settings = load_settings()
        limits = Limits(
            max_archive_bytes=settings.solution_max_archive_bytes,
            max_members=settings.solution_max_members,
            max_xml_bytes=settings.solution_max_xml_bytes,
            max_ratio=settings.solution_max_compression_ratio,
        )
        resolved = layers.workspace_path(path)
        return summarize(path, open_package(resolved, limits), component_types())

    def lookup_for_plan(solution: str) -> SolutionSummary | None:
        """A plan step's `solution` is a package when it exists in the workspace or looks like a path."""
        candidate = layers.workspace_path(solution, must_exist=False)
        if candidate.exists():
            return read_package(solution)
        if "/" in solution or "\\" in solution or solution.lower().endswith(".zip"):
            raise ToolError(f"package {solution!r} does not exist in the workspace")
        return None

    @server.tool()
    def inspect_solution(path: PackagePath) -> SolutionSummary:
        """Summarise a Power Platform solution package (.zip export or unpacked folder in the workspace):
        UniqueName, display names, version, managed flag, publisher and customization prefix, root components,
        missing dependencies declared in solution.xml, and the component inventory of customizations.xml
        (tables/entities, option sets, relationships, flows/workflows, canvas and model-driven apps, web
        resources, security roles, plugin assemblies and steps, connection references, environment variables)
        with counts per kind. Read-only; refuses zip bombs, oversized members and unsafe member names."""
        return read_package(path)

    @server.tool()
    def validate_solution(
        path: PackagePath,
        environment: Annotated[
            str | None,
            Field(None, max_length=200, description="target environment; enables its policy checks"),
        ] = None,
    ) -> ValidationReport:
        """Check a solution package against ALM rules before deployment: four-part numeric version (PP001),
        missing dependencies (PP002), unmanaged solution into an environment whose policy forbids it (PP003),
        publisher prefix required by the estate (PP004), default 'new' publisher (PP005), component schema names
        without the publisher prefix (PP006) or off the naming convention (PP007), solution name convention
        (PP008), empty solution (PP009), connection references to DLP-blocked connectors (PP010).
        Conventions and policies come from context/infrastructure/environments.json and
        context/business/compliance.json. Returns findings with rule id, severity and message."""
        estate = load_estate(layers)
        env = estate.require(environment) if environment else None
        summary = read_package(path)
        return validate(summary, estate, env, component_types())

    @server.tool()
    def diff_solutions(old: PackagePath, new: PackagePath) -> SolutionDiff:
        """Compare two versions of a solution package (.zip or folder, workspace paths): version change and
        whether it increased, managed flag and publisher changes, root components and customizations.xml
        components added / removed / changed (by XML content), and missing dependencies added or resolved."""
        return diff(read_package(old), read_package(new))

    @server.tool()
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

    @server.tool()
    def check_deployment_plan(plan: DeploymentPlan) -> PlanReport:
        """Check an ordered deployment plan (steps of solution package path or UniqueName, target environment,
        managed flag, optional version) against the environments in context before running it: unknown
        environment (PLN001), unmanaged into an environment that allows only managed (PLN002), skipping the
        environments a target must be promoted from, or promoting a version that never went through them (PLN003),
        version not increasing in the same environment (PLN004), managed flag or version disagreeing with the
        package (PLN005/PLN006), missing package (PLN007), going back a stage (PLN008), bad version (PLN009)."""
        return check_plan(plan, load_estate(layers), lookup_for_plan)

    @server.tool()
    async def pac_solution_list(environment: EnvironmentName) -> pac.PacResult:
        """List the solutions installed in an environment with the Power Platform CLI
        (`pac solution list`). Needs pac installed and signed in (`pac auth create`)."""
        env = load_estate(layers).require(environment)
        settings = load_settings()
        binary = pac.find_pac(settings.pac_search_path)
        return await pac.run_pac(
            runtime.sandbox, binary, ["solution", "list", "--environment", env.url], settings.pac_timeout_s
        )

    @server.tool()
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

    @server.tool()
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
        summary = await anyio.to_thread.run_sync(read_package, path)
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

    @server.tool()
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
        await anyio.to_thread.run_sync(read_package, path)  # a broken package is reported here, not after an upload
        out = layers.workspace_path(output_directory, must_exist=False)
        settings = load_settings()
        binary = pac.find_pac(settings.pac_search_path)
        out.mkdir(parents=True, exist_ok=True)
        args = ["solution", "check", "--path", str(layers.workspace_path(path)), "--outputDirectory", str(out)]
        args += ["--geo", geo] if geo else []
        return await pac.run_pac(runtime.sandbox, binary, args, settings.pac_timeout_s, output_path=output_directory)

    @server.tool()
    async def graph_list_teams(
        limit: Annotated[int, Field(ge=1, le=999)] = 100,
        name_starts_with: Annotated[str | None, Field(None, max_length=100)] = None,
    ) -> TeamList:
        """List Microsoft Teams teams in the tenant via Microsoft Graph (GET /teams), optionally only those whose
        display name starts with `name_starts_with`. Needs M365_CREDENTIALS_FILE and TENANT_ID_FILE and the
        application permission Team.ReadBasic.All."""
        settings = load_settings()
        creds = graph_credentials(settings)
        params = {"$select": "id,displayName,description,visibility", "$top": str(min(limit, 100))}
        if name_starts_with:
            escaped = name_starts_with.replace("'", "''")  # OData string literal quoting
            params["$filter"] = f"startswith(displayName,'{escaped}')"
        items, more = await graph.get_all(settings, creds, "/teams", "Team.ReadBasic.All", params, limit)
        teams = [
            Team(
                id=t["id"],
                display_name=t.get("displayName"),
                description=t.get("description"),
                visibility=t.get("visibility"),
            )
            for t in items
        ]
        return TeamList(teams=teams, count=len(teams), more_available=more)

    @server.tool()
    async def graph_list_sites(
        search: Annotated[str, Field(min_length=1, max_length=200, description="keywords; * for all")] = "*",
        limit: Annotated[int, Field(ge=1, le=999)] = 100,
    ) -> SiteList:
        """Find SharePoint sites via Microsoft Graph (GET /sites?search=...). Needs M365_CREDENTIALS_FILE and
        TENANT_ID_FILE and the application permission Sites.Read.All."""
        settings = load_settings()
        creds = graph_credentials(settings)
        params = {"search": search, "$select": "id,name,displayName,webUrl,createdDateTime"}
        items, more = await graph.get_all(settings, creds, "/sites", "Sites.Read.All", params, limit)
        sites = [
            Site(
                id=s["id"],
                name=s.get("name"),
                display_name=s.get("displayName"),
                web_url=s.get("webUrl"),
                created=s.get("createdDateTime"),
            )
            for s in items
        ]
        return SiteList(sites=sites, count=len(sites), more_available=more)

    @server.tool()
    async def graph_get_user(
        user: Annotated[str, Field(min_length=1, max_length=320, description="object id or userPrincipalName")],
    ) -> User:
        """Look up one Microsoft 365 user via Microsoft Graph (GET /users/{id or userPrincipalName}): display name,
        UPN, mail, job title, department, office, account enabled. Needs M365_CREDENTIALS_FILE and TENANT_ID_FILE
        and the application permission User.Read.All."""
        if not USER_ID.match(user):
            raise ToolError(f"{user!r} is not a user id or userPrincipalName")
        settings = load_settings()
        creds = graph_credentials(settings)
        select = "id,displayName,userPrincipalName,mail,jobTitle,department,officeLocation,accountEnabled"
        body = await graph.get(
            settings, creds, f"/users/{quote(user, safe='@.')}", "User.Read.All", {"$select": select}
        )
        return User(
            id=body.get("id", ""),
            display_name=body.get("displayName"),
            user_principal_name=body.get("userPrincipalName"),
            mail=body.get("mail"),
            job_title=body.get("jobTitle"),
            department=body.get("department"),
            office_location=body.get("officeLocation"),
            account_enabled=body.get("accountEnabled"),
        )


def _view(env: Environment) -> EnvironmentView:
    return EnvironmentView(**env.model_dump())
