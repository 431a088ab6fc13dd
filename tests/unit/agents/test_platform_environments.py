"""list_environments and check_deployment_plan against context/infrastructure/environments.json
(cfs-dev -> cfs-test -> cfs-uat -> cfs-prod; prod promotes from test or uat; test and above managed only)."""

from __future__ import annotations

import json

import pytest

from tests.unit.agents.test_platform_fixtures import package_files, solution_xml, write_zip

pytestmark = pytest.mark.anyio


def step(solution: str, environment: str, managed: bool = True, version: str | None = None) -> dict:
    return {"solution": solution, "environment": environment, "managed": managed} | (
        {"version": version} if version else {}
    )


async def check(client, *steps: dict) -> dict:
    result = await client.call_tool("check_deployment_plan", {"plan": {"steps": list(steps)}})
    assert not result.is_error, result.content[0].text
    return result.structured_content


def rules(report: dict) -> list[tuple[str, str]]:
    return [(f["rule"], f["severity"]) for f in report["findings"]]


async def test_list_environments_reads_the_context_file(agent_client):
    client, _ = await agent_client("platform")
    result = await client.call_tool("list_environments", {})
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    by_name = {e["name"]: e for e in data["environments"]}
    assert list(by_name) == ["cfs-dev", "cfs-build", "cfs-test", "cfs-uat", "cfs-prod"]
    assert by_name["cfs-prod"]["type"] == "production"
    assert by_name["cfs-prod"]["policy"]["allow_unmanaged"] is False
    assert by_name["cfs-prod"]["policy"]["promote_from"] == ["cfs-test", "cfs-uat"]
    assert by_name["cfs-dev"]["policy"]["allow_unmanaged"] is True
    assert by_name["cfs-test"]["url"].startswith("https://")
    assert data["publisher"]["customization_prefix"] == "cfs"
    assert data["promotion_order"] == ["dev", "test", "prod"]


async def test_a_proper_promotion_plan_is_valid(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "CfsCore_managed.zip", package_files(solution=solution_xml(managed=True)))
    report = await check(
        client,
        step("CfsCore", "cfs-dev", managed=False, version="1.4.0.0"),
        step("CfsCore_managed.zip", "cfs-test"),
        step("CfsCore_managed.zip", "cfs-uat"),
        step("CfsCore_managed.zip", "https://cfs.crm4.dynamics.com/"),
    )
    assert report["valid"] is True, report["findings"]
    assert report["findings"] == []
    assert [(s["environment"], s["stage"], s["version"]) for s in report["steps"]] == [
        ("cfs-dev", "dev", "1.4.0.0"),
        ("cfs-test", "test", "1.4.0.0"),
        ("cfs-uat", "test", "1.4.0.0"),
        ("cfs-prod", "prod", "1.4.0.0"),
    ]
    assert report["steps"][1]["solution"] == "CfsCore"  # the package's UniqueName, not its file name


async def test_unknown_environment_and_unmanaged_into_production(agent_client):
    client, _ = await agent_client("platform")
    report = await check(
        client,
        step("CfsCore", "cfs-staging", version="1.0.0.0"),
        step("CfsCore", "cfs-test", managed=False, version="1.0.0.0"),
    )
    assert rules(report) == [("PLN001", "error"), ("PLN002", "error")]
    assert "unknown environment 'cfs-staging'" in report["findings"][0]["message"]
    assert report["valid"] is False


async def test_production_without_test_is_refused(agent_client):
    client, _ = await agent_client("platform")
    report = await check(
        client, step("CfsCore", "cfs-dev", False, "1.0.0.0"), step("CfsCore", "cfs-prod", True, "1.0.0.0")
    )
    assert rules(report) == [("PLN003", "error")]
    assert "without passing through cfs-test or cfs-uat" in report["findings"][0]["message"]


async def test_production_version_must_be_the_tested_version(agent_client):
    client, _ = await agent_client("platform")
    report = await check(
        client, step("CfsCore", "cfs-test", True, "1.0.0.0"), step("CfsCore", "cfs-prod", True, "1.1.0.0")
    )
    assert rules(report) == [("PLN003", "error")]
    assert "only 1.0.0.0 went through" in report["findings"][0]["message"]


async def test_version_must_increase_within_an_environment(agent_client):
    client, _ = await agent_client("platform")
    report = await check(
        client,
        step("CfsCore", "cfs-test", True, "1.2.0.0"),
        step("CfsCore", "cfs-test", True, "1.2.0.0"),
        step("CfsCore", "cfs-test", True, "1.1.9.0"),
    )
    assert rules(report) == [("PLN004", "warning"), ("PLN004", "error")]
    assert "a lower version cannot be imported" in report["findings"][1]["message"]


async def test_package_disagreements_and_missing_packages(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "unmanaged.zip", package_files())
    report = await check(
        client,
        step("unmanaged.zip", "cfs-build", managed=True, version="9.9.9.9"),
        step("drops/CfsCore_2_0.zip", "cfs-dev", managed=False),
        step("../outside.zip", "cfs-dev", managed=False),
    )
    found = rules(report)
    assert ("PLN006", "error") in found  # plan version 9.9.9.9 vs package 1.4.0.0
    assert ("PLN005", "error") in found  # plan says managed, package is unmanaged
    missing = [f["message"] for f in report["findings"] if f["rule"] == "PLN007"]
    assert len(missing) == 2
    assert "does not exist in the workspace" in missing[0] and "outside" in missing[1]


async def test_going_back_a_stage_is_a_warning(agent_client):
    client, _ = await agent_client("platform")
    report = await check(
        client, step("CfsCore", "cfs-test", True, "1.0.0.0"), step("CfsCore", "cfs-dev", True, "1.0.0.1")
    )
    assert rules(report) == [("PLN008", "warning")]
    assert report["valid"] is True


async def test_unknown_version_is_noted(agent_client):
    client, _ = await agent_client("platform")
    report = await check(client, step("CfsCore", "cfs-dev", False))
    assert rules(report) == [("PLN010", "info")]


async def test_empty_plan_is_invalid_input(agent_client):
    client, _ = await agent_client("platform")
    result = await client.call_tool("check_deployment_plan", {"plan": {"steps": []}})
    assert result.is_error


async def test_environments_file_with_errors_is_reported(agent_client, tmp_path):
    context = tmp_path / "ctx"
    (context / "infrastructure").mkdir(parents=True)
    (context / "infrastructure" / "environments.json").write_text(json.dumps({"environments": [{"name": "x"}]}))
    client, _ = await agent_client("platform", context_dir=context)
    result = await client.call_tool("list_environments", {})
    assert result.is_error and "is invalid" in result.content[0].text
    (context / "infrastructure" / "environments.json").write_text("{not json")
    result = await client.call_tool("list_environments", {})
    assert result.is_error and "not valid json" in result.content[0].text
