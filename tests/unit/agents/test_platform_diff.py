"""diff_solutions between two real packages of the same solution."""

from __future__ import annotations

import pytest

from tests.unit.agents.test_platform_fixtures import customizations_xml, package_files, solution_xml, write_zip

pytestmark = pytest.mark.anyio


async def test_diff_reports_version_components_managed_and_dependencies(agent_client):
    client, runtime = await agent_client("platform")
    ws = runtime.layers.workspace
    write_zip(
        ws / "v1.zip",
        package_files(
            solution=solution_xml(version="1.4.0.0", missing=[(1, "msdyn_workorder", "FieldService")]),
            customizations=customizations_xml(web_resources=["cfs_/scripts/old.js"]),
        ),
    )
    write_zip(
        ws / "v2.zip",
        package_files(
            solution=solution_xml(version="1.5.0.2", managed=True, roots=[(1, "cfs_workorder"), (1, "cfs_visit")]),
            customizations=customizations_xml(
                entities=["cfs_workorder", "account", "cfs_visit"],
                entity_extra={"cfs_workorder": '<attributes><attribute PhysicalName="cfs_Eta" /></attributes>'},
                web_resources=[],
            ),
        ),
    )
    result = await client.call_tool("diff_solutions", {"old": "v1.zip", "new": "v2.zip"})
    assert not result.is_error, result.content[0].text
    d = result.structured_content
    assert d["version"] == {"old": "1.4.0.0", "new": "1.5.0.2", "direction": "increased"}
    assert d["same_solution"] is True
    assert d["managed_changed"] is True and d["managed"] == {"old": False, "new": True}
    assert d["components"]["added"] == [{"kind": "entity", "name": "cfs_visit"}]
    assert d["components"]["removed"] == [{"kind": "web_resource", "name": "cfs_/scripts/old.js"}]
    assert d["components"]["changed"] == [{"kind": "entity", "name": "cfs_workorder"}]
    assert d["components"]["unchanged"] == 8
    assert d["dependencies_removed"] == ["entity msdyn_workorder"] and d["dependencies_added"] == []
    assert {"kind": "entity", "name": "cfs_visit"} in d["root_components_added"]
    assert {"kind": "environment_variable", "name": "cfs_ServiceSiteUrl"} in d["root_components_removed"]
    assert "1 added, 1 removed, 1 changed" in d["summary"]


async def test_identical_packages_differ_in_nothing_even_when_reformatted(agent_client):
    client, runtime = await agent_client("platform")
    ws = runtime.layers.workspace
    files = package_files()
    write_zip(ws / "a.zip", files)
    # same content, different whitespace between elements
    write_zip(ws / "b.zip", {**files, "customizations.xml": files["customizations.xml"].replace("><", ">\n  <")})
    d = (await client.call_tool("diff_solutions", {"old": "a.zip", "new": "b.zip"})).structured_content
    assert d["version"]["direction"] == "unchanged"
    assert d["components"]["added"] == d["components"]["removed"] == d["components"]["changed"] == []
    assert d["managed_changed"] is False and d["publisher_changed"] is False


async def test_lower_version_and_other_solution_are_called_out(agent_client):
    client, runtime = await agent_client("platform")
    ws = runtime.layers.workspace
    write_zip(ws / "new.zip", package_files(solution=solution_xml(version="2.0.0.0")))
    write_zip(ws / "old.zip", package_files(solution=solution_xml(unique_name="CfsMobile", version="1.9.9.9")))
    d = (await client.call_tool("diff_solutions", {"old": "new.zip", "new": "old.zip"})).structured_content
    assert d["version"]["direction"] == "decreased"
    assert d["same_solution"] is False and "different solutions (CfsCore vs CfsMobile)" in d["summary"]


async def test_diff_with_a_broken_side_is_an_error(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "a.zip", package_files())
    result = await client.call_tool("diff_solutions", {"old": "a.zip", "new": "nope.zip"})
    assert result.is_error and "'nope.zip' does not exist" in result.content[0].text
