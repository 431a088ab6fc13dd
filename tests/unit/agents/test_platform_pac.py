"""The pac_* tools. pac is not installed on this machine, so the not-installed path is tested for real
(an empty PAC_SEARCH_PATH, and an empty PATH). The argument lists, policy refusals and failure reporting
are tested through the real sandbox against a pac double: a small shell script written into tmp that
records its arguments, as the real CLI cannot be installed or reach Dataverse from here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.unit.agents.test_platform_fixtures import package_files, solution_xml, write_zip

pytestmark = pytest.mark.anyio

PAC_DOUBLE = """#!/bin/sh
# test double of the Power Platform CLI: records its arguments, exports a prepared zip, fails on demand
here=$(dirname "$0")
printf '%s\\n' "$*" >> "$here/calls.log"
if [ -f "$here/fail" ]; then
  echo "Error: Solution import failed: missing dependency msdyn_workorder" >&2
  exit 1
fi
if [ "$1 $2" = "solution export" ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = "--path" ]; then cp "$here/export.zip" "$2"; fi
    shift
  done
fi
echo "Connected as ci@contoso.example"
"""


@pytest.fixture
def pac_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "pac-bin"
    folder.mkdir(mode=0o777)  # the double runs as a sandbox uid and logs its calls here
    folder.chmod(0o777)
    script = folder / "pac"
    script.write_text(PAC_DOUBLE)
    script.chmod(0o755)
    write_zip(folder / "export.zip", package_files(solution=solution_xml(managed=True)))
    monkeypatch.setenv("PAC_SEARCH_PATH", str(folder))
    return folder


def calls(folder: Path) -> list[str]:
    log = folder / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


async def test_pac_not_installed_on_the_search_path(agent_client, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PAC_SEARCH_PATH", str(empty))
    client, _ = await agent_client("platform")
    result = await client.call_tool("pac_solution_list", {"environment": "cfs-dev"})
    assert result.is_error
    assert "pac CLI not installed: no 'pac' executable on PAC_SEARCH_PATH" in result.content[0].text


async def test_pac_not_installed_on_path(agent_client, tmp_path, monkeypatch):
    assert shutil.which("pac") is None, "this test expects the machine's own PATH to have no pac"
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.delenv("PAC_SEARCH_PATH", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "s.zip", package_files())
    for tool, args in [
        ("pac_solution_list", {"environment": "cfs-dev"}),
        ("pac_solution_export", {"name": "CfsCore", "environment": "cfs-dev", "output": "out/CfsCore.zip"}),
        ("pac_solution_import", {"path": "s.zip", "environment": "cfs-dev"}),
        ("pac_solution_check", {"path": "s.zip"}),
    ]:
        result = await client.call_tool(tool, args)
        assert result.is_error, tool
        assert "pac CLI not installed: no 'pac' executable on PATH" in result.content[0].text


async def test_list_passes_the_environment_url(agent_client, pac_double):
    client, _ = await agent_client("platform")
    result = await client.call_tool("pac_solution_list", {"environment": "cfs-test"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["exit_code"] == 0
    assert "Connected as" in result.structured_content["stdout"]
    assert calls(pac_double) == ["solution list --environment https://cfs-test.crm4.dynamics.com"]


async def test_export_writes_the_package_into_the_workspace(agent_client, pac_double):
    client, runtime = await agent_client("platform")
    args = {"name": "CfsCore", "environment": "cfs-dev", "output": "exports/CfsCore_managed.zip", "managed": True}
    result = await client.call_tool("pac_solution_export", args)
    assert not result.is_error, result.content[0].text
    target = runtime.layers.workspace / "exports" / "CfsCore_managed.zip"
    assert target.is_file()
    assert result.structured_content["output_path"] == "exports/CfsCore_managed.zip"
    assert calls(pac_double) == [
        f"solution export --name CfsCore --path {target} --managed true --environment https://cfs-dev.crm4.dynamics.com"
    ]
    again = await client.call_tool("pac_solution_export", args)
    assert again.is_error and "already exists; pass overwrite=true" in again.content[0].text


async def test_import_of_unmanaged_into_production_is_refused_before_pac_runs(agent_client, pac_double):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "dev.zip", package_files())
    result = await client.call_tool("pac_solution_import", {"path": "dev.zip", "environment": "cfs-prod"})
    assert result.is_error
    assert "refusing to import unmanaged CfsCore 1.4.0.0 into cfs-prod" in result.content[0].text
    assert calls(pac_double) == []


async def test_import_of_managed_package(agent_client, pac_double):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "rel.zip", package_files(solution=solution_xml(managed=True)))
    args = {"path": "rel.zip", "environment": "cfs-test", "publish_changes": True}
    result = await client.call_tool("pac_solution_import", args)
    assert not result.is_error, result.content[0].text
    package = runtime.layers.workspace / "rel.zip"
    assert calls(pac_double) == [
        f"solution import --path {package} --environment https://cfs-test.crm4.dynamics.com "
        "--activate-plugins --publish-changes"
    ]


async def test_import_of_a_broken_package_never_reaches_pac(agent_client, pac_double):
    client, runtime = await agent_client("platform")
    (runtime.layers.workspace / "broken.zip").write_text("not a zip")
    result = await client.call_tool("pac_solution_import", {"path": "broken.zip", "environment": "cfs-dev"})
    assert result.is_error and "not a zip archive" in result.content[0].text
    assert calls(pac_double) == []


async def test_pac_failure_quotes_what_pac_said(agent_client, pac_double):
    (pac_double / "fail").write_text("")
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "rel.zip", package_files(solution=solution_xml(managed=True)))
    result = await client.call_tool("pac_solution_import", {"path": "rel.zip", "environment": "cfs-uat"})
    assert result.is_error
    text = result.content[0].text
    assert "pac solution import failed (exit 1)" in text and "missing dependency msdyn_workorder" in text


async def test_check_writes_its_report_folder_in_the_workspace(agent_client, pac_double):
    client, runtime = await agent_client("platform")
    write_zip(runtime.layers.workspace / "rel.zip", package_files(solution=solution_xml(managed=True)))
    result = await client.call_tool("pac_solution_check", {"path": "rel.zip", "geo": "Europe"})
    assert not result.is_error, result.content[0].text
    out = runtime.layers.workspace / "solution-checker"
    assert out.is_dir()
    assert calls(pac_double) == [
        f"solution check --path {runtime.layers.workspace / 'rel.zip'} --outputDirectory {out} --geo Europe"
    ]


async def test_unknown_environment_and_bad_output_are_refused(agent_client, pac_double):
    client, _ = await agent_client("platform")
    result = await client.call_tool("pac_solution_list", {"environment": "https://evil.example.com"})
    assert result.is_error and "unknown environment" in result.content[0].text
    args = {"name": "CfsCore", "environment": "cfs-dev", "output": "../escape.zip"}
    result = await client.call_tool("pac_solution_export", args)
    assert result.is_error and "outside" in result.content[0].text
    args = {"name": "CfsCore", "environment": "cfs-dev", "output": "exports/core.tar"}
    result = await client.call_tool("pac_solution_export", args)
    assert result.is_error and "must end in .zip" in result.content[0].text
    assert calls(pac_double) == []
