"""inspect_solution on real packages built in the workspace: zip, unpacked folder, SolutionPackager
layout, and every kind of bad input (missing, outside the workspace, not a zip, no manifest,
malformed XML, DTDs, oversized and bomb-like members, unsafe member names)."""

from __future__ import annotations

import os
import zipfile

import pytest

from tests.unit.agents.test_platform_fixtures import (
    customizations_xml,
    package_files,
    solution_xml,
    write_folder,
    write_zip,
)

pytestmark = pytest.mark.anyio


async def inspect(client, path: str):
    return await client.call_tool("inspect_solution", {"path": path})


async def test_zip_summary_reports_manifest_and_component_inventory(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(
        runtime.layers.workspace / "out" / "CfsCore_1_4_0_0.zip",
        package_files(solution=solution_xml(missing=[(1, "msdyn_workorder", "FieldService")])),
    )
    result = await inspect(client, "out/CfsCore_1_4_0_0.zip")
    assert not result.is_error, result.content[0].text
    s = result.structured_content
    assert (s["unique_name"], s["version"], s["version_valid"], s["managed"]) == ("CfsCore", "1.4.0.0", True, False)
    assert s["display_name"] == "Field Services Core"
    assert (s["source"], s["layout"]) == ("zip", "export")
    assert s["publisher"]["customization_prefix"] == "cfs"
    assert s["publisher"]["option_value_prefix"] == 72650
    assert [(r["kind"], r["schema_name"]) for r in s["root_components"]] == [
        ("entity", "cfs_workorder"),
        ("entity", "account"),
        ("environment_variable", "cfs_ServiceSiteUrl"),
    ]
    [dep] = s["missing_dependencies"]
    assert dep["required"]["kind"] == "entity"
    assert dep["required"]["schema_name"] == "msdyn_workorder"
    assert dep["required"]["solution"] == "FieldService"
    assert dep["dependent"]["schema_name"] == "cfs_workorder_msdyn_workorder"
    assert s["component_counts"] == {
        "canvas_app": 1,
        "connection_reference": 1,
        "entity": 2,
        "environment_variable": 1,
        "option_set": 1,
        "plugin_assembly": 1,
        "security_role": 1,
        "web_resource": 1,
        "workflow": 1,
    }
    by_name = {c["name"]: c for c in s["components"]}
    assert by_name["cfs_TeamsEscalations"]["connector"] == "/providers/Microsoft.PowerApps/apis/shared_teams"
    assert by_name["Notify dispatcher on P1 work order"]["id"] == "{10000000-0000-0000-0000-000000000000}"
    assert by_name["cfs_workorder"]["display_name"] == "cfs_workorder"
    assert s["languages"] == [1033, 1031]
    assert s["file_count"] == 4


async def test_unpacked_folder_and_packager_layout_give_the_same_inventory(agent_client):
    client, runtime = await agent_client("platform")
    ws = runtime.layers.workspace
    files = package_files()
    write_zip(ws / "core.zip", files)
    write_folder(ws / "core", files)
    write_folder(
        ws / "src",
        {"Other/Solution.xml": files["solution.xml"], "Other/Customizations.xml": files["customizations.xml"]},
    )
    zipped = (await inspect(client, "core.zip")).structured_content
    folder = (await inspect(client, "core")).structured_content
    packager = (await inspect(client, "src")).structured_content
    assert folder["source"] == "folder" and packager["layout"] == "packager"
    for summary in (folder, packager):
        assert summary["components"] == zipped["components"]
        assert summary["unique_name"] == "CfsCore"


async def test_managed_flag_and_bad_version_are_reported_as_read(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(
        runtime.layers.workspace / "m.zip",
        package_files(solution=solution_xml(managed=True, version="1.4.beta")),
    )
    s = (await inspect(client, "m.zip")).structured_content
    assert s["managed"] is True and s["managed_flag"] == "managed"
    assert s["version"] == "1.4.beta" and s["version_valid"] is False


async def test_package_without_customizations_is_inventoried_from_root_components(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "thin.zip", {"solution.xml": solution_xml()})
    s = (await inspect(client, "thin.zip")).structured_content
    assert s["customizations_present"] is False and s["components"] == []
    assert any("no customizations.xml" in note for note in s["notes"])


async def test_unknown_customizations_section_is_noted_not_dropped_silently(agent_client):
    client, runtime = await agent_client("platform")
    custom = customizations_xml(extra="<Dialogs><Dialog Name='x' /><Dialog Name='y' /></Dialogs>")
    write_zip(runtime.layers.workspace / "d.zip", package_files(customizations=custom))
    s = (await inspect(client, "d.zip")).structured_content
    assert "customizations.xml section <Dialogs> (2 items) is not inventoried" in s["notes"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("missing.zip", "does not exist"),
        ("../elsewhere.zip", "outside"),
        ("/etc/passwd", "outside"),
    ],
)
async def test_paths_that_are_missing_or_outside_the_workspace_are_refused(agent_client, path, expected):
    client, _ = await agent_client("platform")
    result = await inspect(client, path)
    assert result.is_error
    assert expected in result.content[0].text


async def test_file_that_is_not_a_zip_is_refused(agent_client):
    client, runtime = await agent_client("platform")
    (runtime.layers.workspace / "notes.zip").write_text("just text, not an archive")
    result = await inspect(client, "notes.zip")
    assert result.is_error and "not a zip archive" in result.content[0].text


async def test_zip_without_solution_xml_is_not_a_solution(agent_client):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "other.zip", {"readme.txt": "hello", "customizations.xml": "<x/>"})
    result = await inspect(client, "other.zip")
    assert result.is_error and "has no solution.xml" in result.content[0].text


async def test_folder_without_solution_xml_is_not_a_solution(agent_client):
    client, runtime = await agent_client("platform")
    write_folder(runtime.layers.workspace / "empty", {"readme.md": "# nothing"})
    result = await inspect(client, "empty")
    assert result.is_error and "has no solution.xml" in result.content[0].text


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"solution.xml": "<ImportExportXml><SolutionManifest>"}, "solution.xml is not well-formed XML"),
        (
            {"solution.xml": solution_xml(), "customizations.xml": "<ImportExportXml><Entities></ImportExportXml>"},
            "customizations.xml is not well-formed XML",
        ),
        ({"solution.xml": "<Other/>"}, "expected <ImportExportXml>"),
        ({"solution.xml": "<ImportExportXml><SolutionManifest /></ImportExportXml>"}, "no <UniqueName>"),
        ({"solution.xml": "<ImportExportXml />"}, "no <SolutionManifest>"),
        (
            {"solution.xml": '<!DOCTYPE x [<!ENTITY a "aaaa">]><ImportExportXml>&a;</ImportExportXml>'},
            "declares a DTD or entities",
        ),
    ],
)
async def test_malformed_manifests_get_a_clear_error(agent_client, files, expected):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "bad.zip", files)
    result = await inspect(client, "bad.zip")
    assert result.is_error
    assert expected in result.content[0].text


async def test_member_over_the_xml_size_limit_is_refused(agent_client, monkeypatch):
    monkeypatch.setenv("SOLUTION_MAX_XML_BYTES", "4096")
    client, runtime = await agent_client("platform")
    big = customizations_xml(entities=[f"cfs_table{i}" for i in range(200)])
    write_zip(runtime.layers.workspace / "big.zip", package_files(customizations=big))
    result = await inspect(client, "big.zip")
    assert result.is_error
    assert "customizations.xml is" in result.content[0].text and "4096-byte limit" in result.content[0].text


async def test_decompression_bomb_is_refused_before_it_is_inflated(agent_client):
    client, runtime = await agent_client("platform")
    bomb = b"<ImportExportXml>" + b" " * 20_000_000 + b"</ImportExportXml>"
    write_zip(runtime.layers.workspace / "bomb.zip", {"solution.xml": solution_xml(), "customizations.xml": bomb})
    result = await inspect(client, "bomb.zip")
    assert result.is_error and "likely decompression bomb" in result.content[0].text


async def test_archive_over_the_size_limit_is_refused(agent_client, monkeypatch):
    monkeypatch.setenv("SOLUTION_MAX_ARCHIVE_BYTES", "2048")
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "large.zip", {**package_files(), "CanvasApps/app.msapp": os.urandom(4096)})
    result = await inspect(client, "large.zip")
    assert result.is_error and "2048-byte limit for a package" in result.content[0].text


@pytest.mark.parametrize("name", ["../../etc/cron.d/evil", "/abs/solution.xml", "C:/Windows/evil.dll", "a\\..\\..\\x"])
async def test_zip_slip_member_names_are_refused(agent_client, name):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "slip.zip", {**package_files(), name: "payload"})
    result = await inspect(client, "slip.zip")
    assert result.is_error and "unsafe member name" in result.content[0].text


async def test_member_count_limit(agent_client, monkeypatch):
    monkeypatch.setenv("SOLUTION_MAX_MEMBERS", "3")
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "many.zip", package_files())
    result = await inspect(client, "many.zip")
    assert result.is_error and "over the limit of 3" in result.content[0].text


async def test_damaged_zip_is_reported(agent_client):
    client, runtime = await agent_client("platform")
    path = write_zip(runtime.layers.workspace / "damaged.zip", package_files())
    data = bytearray(path.read_bytes())
    # corrupt the compressed bytes of the first member, keep the central directory intact
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
    start = first.header_offset + 30 + len(first.filename)
    data[start : start + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))
    result = await inspect(client, "damaged.zip")
    assert result.is_error
    assert "damaged zip" in result.content[0].text or "cannot be read" in result.content[0].text


async def test_symlink_out_of_a_package_folder_is_refused(agent_client, tmp_path):
    client, runtime = await agent_client("platform")
    secret = tmp_path / "secret.xml"
    secret.write_text(solution_xml())
    folder = runtime.layers.workspace / "linked"
    folder.mkdir()
    (folder / "solution.xml").symlink_to(secret)
    result = await inspect(client, "linked")
    assert result.is_error and "links outside the package" in result.content[0].text


async def test_component_types_are_published_as_knowledge(agent_client):
    client, _ = await agent_client("platform")
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "knowledge://platform/component-types.yaml" in uris
    assert "context://platform/infrastructure/environments.json" in uris


async def test_broken_component_types_knowledge_is_a_clear_error(agent_client, tmp_path):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "component-types.yaml").write_text("sections:\n  Entities: {kind: entity}\n")
    client, runtime = await agent_client("platform", knowledge_dir=knowledge)
    write_zip(runtime.layers.workspace / "ok.zip", package_files())
    result = await inspect(client, "ok.zip")
    assert result.is_error and "component-types.yaml is invalid" in result.content[0].text


PACKAGER_COMPONENTS = {
    # what `pac solution unpack` writes: Other/Customizations.xml with empty sections, and a file per component
    "Entities/cfs_workorder/Entity.xml": (
        '<Entity><Name LocalizedName="Work Order" OriginalName="Work Order">cfs_workorder</Name>'
        '<EntityInfo><entity Name="cfs_workorder" /></EntityInfo></Entity>'
    ),
    "Entities/cfs_workorder/FormXml/main/{a1}.xml": "<forms><systemform /></forms>",  # not a component
    "Workflows/NotifyDispatcher-1000000A-0000-0000-0000-000000000000.xml": (
        '<Workflow WorkflowId="{1000000a-0000-0000-0000-000000000000}" Name="Notify dispatcher">'
        "<JsonFileName>/Workflows/NotifyDispatcher.json</JsonFileName><Category>5</Category></Workflow>"
    ),
    "Workflows/NotifyDispatcher-1000000A-0000-0000-0000-000000000000.json": "{}",
    "CanvasApps/cfs_technicianapp_8f2a1.meta.xml": "<CanvasApp><Name>cfs_technicianapp_8f2a1</Name></CanvasApp>",
    "environmentvariabledefinitions/cfs_ServiceSiteUrl/environmentvariabledefinition.xml": (
        '<environmentvariabledefinition schemaname="cfs_ServiceSiteUrl"><type>100000000</type>'
        "</environmentvariabledefinition>"
    ),
    "Roles/Field Technician.xml": '<Role id="{00000001-0000-0000-0000-000000000000}" name="Field Technician" />',
}


@pytest.mark.anyio
async def test_packager_layout_reads_components_kept_in_their_own_files(agent_client):
    client, runtime = await agent_client("platform")
    empty = customizations_xml(
        entities=(), optionsets=(), roles=(), workflows=(), web_resources=(), canvas_apps=(),
        plugin_assemblies=(), connection_references=(), environment_variables=(),
    )  # fmt: skip
    files = {"Other/Solution.xml": solution_xml(version="1.4"), "Other/Customizations.xml": empty}
    write_folder(runtime.layers.workspace / "src", {**files, **PACKAGER_COMPONENTS})
    result = await client.call_tool("inspect_solution", {"path": "src"})
    assert not result.is_error, result.content[0].text
    s = result.structured_content
    assert s["layout"] == "packager" and s["version"] == "1.4" and s["version_valid"]
    found = {(c["kind"], c["name"]) for c in s["components"]}
    assert found == {
        ("entity", "cfs_workorder"),
        ("workflow", "Notify dispatcher"),
        ("canvas_app", "cfs_technicianapp_8f2a1"),
        ("environment_variable", "cfs_ServiceSiteUrl"),
        ("security_role", "Field Technician"),
    }
    write_zip(runtime.layers.workspace / "src.zip", {**files, **PACKAGER_COMPONENTS})
    zipped = (await client.call_tool("inspect_solution", {"path": "src.zip"})).structured_content
    assert zipped["component_counts"] == s["component_counts"]
    # a changed component file is a change diff_solutions sees
    changed = dict(PACKAGER_COMPONENTS)
    changed["Roles/Field Technician.xml"] = changed["Roles/Field Technician.xml"].replace(" />", "><x /></Role>")
    write_folder(runtime.layers.workspace / "new", {**files, **changed})
    diff = (await client.call_tool("diff_solutions", {"old": "src", "new": "new"})).structured_content
    assert "Field Technician" in str(diff)
