"""The platform agent's Microsoft Graph tools (teams, SharePoint sites, users): read-only calls with the
application's credentials when configured (graph.py), "not configured" otherwise."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from agents.platform.graph import GraphClient
from agents.platform.settings import graph_credentials, load_settings
from agents.runtime import AgentRuntime
from agents.runtime.annotations import READ_REMOTE
from agents.runtime.errors import ToolError

# a user id (GUID) or userPrincipalName; nothing that could change the request path
USER_ID = re.compile(r"^[A-Za-z0-9._%+'#-]+(@[A-Za-z0-9.-]+)?$")


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


def register(server: MCPServer, runtime: AgentRuntime) -> None:
    graph = GraphClient()
    register_collaboration(server, graph)
    register_users(server, graph)


def register_collaboration(server: MCPServer, graph: GraphClient) -> None:

    @server.tool(annotations=READ_REMOTE)
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

    @server.tool(annotations=READ_REMOTE)
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


def register_users(server: MCPServer, graph: GraphClient) -> None:
    @server.tool(annotations=READ_REMOTE)
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
