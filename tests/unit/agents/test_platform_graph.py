"""Graph tools against tests/doubles/graph_api.py, a real HTTP server on 127.0.0.1 standing in for
login.microsoftonline.com and graph.microsoft.com; the agent reaches it with httpx2 through
GRAPH_LOGIN_BASE_URL and GRAPH_BASE_URL, with credentials from M365_CREDENTIALS_FILE / TENANT_ID_FILE."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.graph_api import GraphDouble

pytestmark = pytest.mark.anyio

SECRET = "s3cret-value-never-logged"


def configure(monkeypatch: pytest.MonkeyPatch, folder: Path, graph: GraphDouble, secret: str = SECRET) -> None:
    creds = folder / "m365-creds.json"
    creds.write_text(json.dumps({"client_id": graph.client_id, "client_secret": secret}))
    tenant = folder / "tenant-id"
    tenant.write_text(graph.tenant + "\n")
    monkeypatch.setenv("M365_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("TENANT_ID_FILE", str(tenant))
    monkeypatch.setenv("GRAPH_LOGIN_BASE_URL", graph.login_base_url)
    monkeypatch.setenv("GRAPH_BASE_URL", graph.graph_base_url)


@pytest.fixture
def graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphDouble]:
    with GraphDouble(client_secret=SECRET) as double:
        double.teams = [
            {
                "id": f"team-{i:03}",
                "displayName": f"Region {i:03}",
                "description": "field region",
                "visibility": "private",
            }
            for i in range(150)
        ]
        double.teams.append(
            {"id": "team-ops", "displayName": "O'Brien Ops", "description": None, "visibility": "public"}
        )
        double.sites = [
            {
                "id": "contoso.sharepoint.com,1,2",
                "name": "service",
                "displayName": "Service",
                "webUrl": "https://contoso.sharepoint.com/sites/service",
                "createdDateTime": "2025-02-01T09:00:00Z",
            },
            {
                "id": "contoso.sharepoint.com,3,4",
                "name": "hr",
                "displayName": "People & Culture",
                "webUrl": "https://contoso.sharepoint.com/sites/hr",
                "createdDateTime": "2024-11-12T10:30:00Z",
            },
        ]
        double.users = [
            {
                "id": "5f1c0d2e-0000-4000-8000-000000000001",
                "displayName": "Dana Dispatcher",
                "userPrincipalName": "dana@contoso.example",
                "mail": "dana@contoso.example",
                "jobTitle": "Dispatcher",
                "department": "Field Services",
                "officeLocation": "Leeds",
                "accountEnabled": True,
            }
        ]
        configure(monkeypatch, tmp_path, double)
        yield double


async def test_without_credentials_graph_is_not_configured(agent_client, monkeypatch):
    monkeypatch.delenv("M365_CREDENTIALS_FILE", raising=False)
    monkeypatch.delenv("TENANT_ID_FILE", raising=False)
    client, _ = await agent_client("platform")
    for tool, args in [("graph_list_teams", {}), ("graph_list_sites", {}), ("graph_get_user", {"user": "dana"})]:
        result = await client.call_tool(tool, args)
        assert result.is_error, tool
        assert "Microsoft Graph not configured: set M365_CREDENTIALS_FILE and TENANT_ID_FILE" in result.content[0].text


async def test_credentials_file_that_is_not_json_missing_or_unreadable(agent_client, monkeypatch, tmp_path):
    bad = tmp_path / "creds"
    bad.write_text("client_id=abc")
    monkeypatch.setenv("M365_CREDENTIALS_FILE", str(bad))
    tenant = tmp_path / "tenant"
    tenant.write_text("t")
    monkeypatch.setenv("TENANT_ID_FILE", str(tenant))
    client, _ = await agent_client("platform")
    result = await client.call_tool("graph_list_teams", {})
    assert result.is_error and "must hold JSON" in result.content[0].text
    # an optional secret a deployment left out (reynolds.config.read_secret_files): not configured
    monkeypatch.setenv("M365_CREDENTIALS_FILE", str(tmp_path / "absent.json"))
    result = await client.call_tool("graph_list_teams", {})
    assert result.is_error and "Microsoft Graph not configured" in result.content[0].text
    monkeypatch.setenv("M365_CREDENTIALS_FILE", str(tmp_path))  # there, but not a readable file
    result = await client.call_tool("graph_list_teams", {})
    assert result.is_error and "cannot read a platform agent secret file" in result.content[0].text


async def test_list_teams_follows_pages_up_to_the_limit(agent_client, graph):
    client, _ = await agent_client("platform")
    result = await client.call_tool("graph_list_teams", {"limit": 999})
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert data["count"] == 151 and data["more_available"] is False
    assert data["teams"][0] == {
        "id": "team-000",
        "display_name": "Region 000",
        "description": "field region",
        "visibility": "private",
    }
    assert graph.requests.count(("GET", "/v1.0/teams")) == 2  # two pages of at most 100
    assert graph.tokens_issued == 1

    few = (await client.call_tool("graph_list_teams", {"limit": 5})).structured_content
    assert few["count"] == 5 and few["more_available"] is True
    assert graph.tokens_issued == 1  # the token is cached between calls


async def test_list_teams_filter_quotes_the_name(agent_client, graph):
    client, _ = await agent_client("platform")
    data = (await client.call_tool("graph_list_teams", {"name_starts_with": "o'brien"})).structured_content
    assert [t["id"] for t in data["teams"]] == ["team-ops"]


async def test_list_sites_and_search(agent_client, graph):
    client, _ = await agent_client("platform")
    everything = (await client.call_tool("graph_list_sites", {})).structured_content
    assert [s["name"] for s in everything["sites"]] == ["service", "hr"]
    found = (await client.call_tool("graph_list_sites", {"search": "people"})).structured_content
    assert found["sites"] == [
        {
            "id": "contoso.sharepoint.com,3,4",
            "name": "hr",
            "display_name": "People & Culture",
            "web_url": "https://contoso.sharepoint.com/sites/hr",
            "created": "2024-11-12T10:30:00Z",
        }
    ]


async def test_get_user_by_upn_and_unknown_user(agent_client, graph):
    client, _ = await agent_client("platform")
    user = (await client.call_tool("graph_get_user", {"user": "DANA@contoso.example"})).structured_content
    assert user["display_name"] == "Dana Dispatcher" and user["department"] == "Field Services"
    assert user["account_enabled"] is True
    missing = await client.call_tool("graph_get_user", {"user": "nobody@contoso.example"})
    assert missing.is_error and "found nothing at GET /users/nobody@contoso.example" in missing.content[0].text
    bad = await client.call_tool("graph_get_user", {"user": "../me/messages"})
    assert bad.is_error and "is not a user id or userPrincipalName" in bad.content[0].text


async def test_wrong_secret_is_a_clear_sign_in_error_without_the_secret(agent_client, graph, monkeypatch, tmp_path):
    configure(monkeypatch, tmp_path, graph, secret="wrong-secret-value")
    client, _ = await agent_client("platform")
    result = await client.call_tool("graph_list_teams", {})
    assert result.is_error
    text = result.content[0].text
    assert "Microsoft Graph sign-in failed for client app-1 in tenant contoso-tenant: invalid_client" in text
    assert "AADSTS7000215: Invalid client secret provided." in text
    assert "wrong-secret-value" not in text and "Trace ID" not in text
    assert graph.tokens_issued == 0


async def test_forbidden_endpoint_names_the_missing_permission(agent_client, graph):
    graph.forbidden.add("/teams")
    client, _ = await agent_client("platform")
    result = await client.call_tool("graph_list_teams", {})
    assert result.is_error
    text = result.content[0].text
    assert "Microsoft Graph denied GET /teams (403 Authorization_RequestDenied): Insufficient privileges." in text
    assert "Team.ReadBasic.All" in text


async def test_throttling_passes_on_retry_after(agent_client, graph):
    graph.throttled.add("/sites")
    client, _ = await agent_client("platform")
    result = await client.call_tool("graph_list_sites", {})
    assert result.is_error
    assert "Microsoft Graph is throttling GET /sites (429 TooManyRequests)" in result.content[0].text
    assert "retry after 7 s" in result.content[0].text


async def test_revoked_token_signs_in_again_once(agent_client, graph):
    client, _ = await agent_client("platform")
    assert not (await client.call_tool("graph_list_sites", {})).is_error
    graph.revoke_tokens()
    result = await client.call_tool("graph_list_sites", {})
    assert not result.is_error, result.content[0].text
    assert graph.tokens_issued == 2


async def test_unreachable_graph_is_reported(agent_client, graph, monkeypatch):
    with GraphDouble() as gone:
        url = gone.login_base_url
    monkeypatch.setenv("GRAPH_LOGIN_BASE_URL", url)  # that server is stopped: nothing listens there
    client, _ = await agent_client("platform")
    result = await client.call_tool("graph_list_teams", {})
    assert result.is_error and "cannot reach the Microsoft sign-in endpoint" in result.content[0].text
