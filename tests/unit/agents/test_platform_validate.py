"""validate_solution against the repo's context (environments.json: publisher prefix cfs, cfs-prod allows
only managed; compliance.json: DLP policies) on packages with known defects."""

from __future__ import annotations

import pytest

from tests.unit.agents.test_platform_fixtures import customizations_xml, package_files, solution_xml, write_zip

pytestmark = pytest.mark.anyio


async def validate(client, path: str, environment: str | None = None):
    args = {"path": path} | ({"environment": environment} if environment else {})
    return await client.call_tool("validate_solution", args)


def rules(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report["findings"]:
        found.setdefault(f["rule"], []).append(f["severity"])
    return found


async def test_clean_managed_package_passes_for_production(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "ok.zip", package_files(solution=solution_xml(managed=True)))
    result = await validate(client, "ok.zip", "cfs-prod")
    assert not result.is_error, result.content[0].text
    report = result.structured_content
    assert report["findings"] == []
    assert report["passed"] is True and report["environment"] == "cfs-prod"
    assert report["counts"] == {"error": 0, "warning": 0, "info": 0}


async def test_every_defect_is_reported_with_its_rule(agent_client):
    client, runtime = await agent_client("platform")
    manifest = solution_xml(
        unique_name="core",
        version="2.0.x",
        prefix="new",
        publisher="DefaultPublisherorg1",
        roots=[(1, "new_thing"), (1, "account")],
        missing=[(1, "msdyn_workorder", "FieldService")],
    )
    custom = customizations_xml(
        entities=["new_thing", "account", "cfs_bad-name"],
        connection_references=[("cfs_Tweets", "shared_twitter"), ("cfs_Teams", "shared_teams")],
    )
    write_zip(runtime.layers.workspace / "bad.zip", package_files(solution=manifest, customizations=custom))
    report = (await validate(client, "bad.zip", "cfs-prod")).structured_content
    found = rules(report)
    assert found["PP001"] == ["error"]  # version 2.0.x
    assert found["PP002"] == ["error"]  # msdyn_workorder missing
    assert found["PP003"] == ["error"]  # unmanaged into production
    assert found["PP004"] == ["error"]  # prefix new, estate wants cfs
    assert found["PP005"] == ["warning"]  # default publisher prefix
    assert found["PP006"] == ["error"]  # new_thing (once, though it is root and component)
    assert found["PP007"] == ["warning"]  # cfs_bad-name
    assert found["PP008"] == ["warning"]  # solution name core
    assert found["PP010"] == ["error"]  # shared_twitter, tenant-wide block
    assert "PP009" not in found
    assert report["passed"] is False
    messages = " ".join(f["message"] for f in report["findings"])
    assert "msdyn_workorder from solution FieldService" in messages
    assert "account" not in [f["subject"] for f in report["findings"]]  # a platform table, no prefix expected


async def test_environment_policy_decides_unmanaged_and_dlp(agent_client):
    client, runtime = await agent_client("platform")
    custom = customizations_xml(connection_references=[("cfs_Webhook", "shared_http")])
    write_zip(runtime.layers.workspace / "dev.zip", package_files(customizations=custom))
    dev = (await validate(client, "dev.zip", "cfs-dev")).structured_content
    prod = (await validate(client, "dev.zip", "cfs-prod")).structured_content
    assert dev["passed"] is True and dev["findings"] == []
    assert set(rules(prod)) == {"PP003", "PP010"}  # unmanaged, and shared_http is blocked in production only
    anywhere = (await validate(client, "dev.zip")).structured_content
    assert anywhere["environment"] is None and anywhere["findings"] == []


async def test_empty_solution_is_an_error(agent_client):
    client, runtime = await agent_client("platform")
    empty = customizations_xml(
        entities=[],
        optionsets=[],
        roles=[],
        workflows=[],
        web_resources=[],
        canvas_apps=[],
        plugin_assemblies=[],
        connection_references=[],
        environment_variables=[],
    )
    write_zip(runtime.layers.workspace / "e.zip", package_files(solution=solution_xml(roots=[]), customizations=empty))
    report = (await validate(client, "e.zip")).structured_content
    assert rules(report) == {"PP009": ["error"]}


async def test_unknown_environment_names_the_known_ones(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "ok.zip", package_files())
    result = await validate(client, "ok.zip", "staging")
    assert result.is_error
    assert "unknown environment 'staging'" in result.content[0].text and "cfs-prod" in result.content[0].text


async def test_without_environments_context_the_tool_says_so(agent_client, tmp_path):
    empty_context = tmp_path / "no-context"
    empty_context.mkdir()
    client, runtime = await agent_client("platform", context_dir=empty_context)
    write_zip(runtime.layers.workspace / "ok.zip", package_files())
    result = await validate(client, "ok.zip")
    assert result.is_error
    assert "infrastructure/environments.json is missing" in result.content[0].text
