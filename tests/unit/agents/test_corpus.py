"""The corpus (tests/corpus/): realistic Dockerfiles, Compose files, workflows, a secrets tree and an
unpacked solution, each with the findings its tool must report (expected.yaml beside them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
# credential-shaped values, assembled here so that no file of the repository holds one
FILL = {
    "AWS_KEY": "AKIA" + "Z7Q3JXK2M4PLN8RT",
    "PASSWORD": "Tr0ub4dor" + "-and-3",
    "GITLAB": "glpat-" + "Zx8Yq2Lm4Np6Rt8Vw0Ab",
    "SLACK_WEBHOOK": "https://hooks.slack.com/services/" + "T0A1B2C3D/B0A1B2C3D/" + "q8Xz2LmN4pQr6StUv8WxYz01",
}


def expected(folder: str) -> dict:
    return yaml.safe_load((CORPUS / folder / "expected.yaml").read_text())


def copy_into(workspace: Path, folder: str) -> None:
    shutil.copytree(CORPUS / folder, workspace / folder, ignore=shutil.ignore_patterns("expected.yaml"))


def check(report: dict, case: dict) -> None:
    found = {(f["rule"], f["line"]) for f in report["findings"]}
    wanted = {(rule, line) for rule, line in case.get("rules", [])}
    assert wanted <= found, (wanted - found, report["findings"])
    rules = {rule for rule, _ in found}
    assert not rules & set(case.get("absent", [])), report["findings"]
    assert report["valid"] is case["valid"], report["findings"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(expected("dockerfiles")))
async def test_dockerfiles(agent_client, name: str) -> None:
    client, runtime = await agent_client("devops")
    copy_into(runtime.layers.workspace, "dockerfiles")
    result = await client.call_tool("lint_dockerfile", {"path": f"dockerfiles/{name}"})
    assert not result.is_error, result.content[0].text
    case = expected("dockerfiles")[name]
    report = result.structured_content
    assert report["engine"].lower().startswith(case["engine"].lower()), report["engine"]
    check(report, case)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(expected("compose")))
async def test_compose_files(agent_client, name: str) -> None:
    client, runtime = await agent_client("devops")
    copy_into(runtime.layers.workspace, "compose")
    result = await client.call_tool("validate_compose", {"path": f"compose/{name}"})
    assert not result.is_error, result.content[0].text
    check(result.structured_content, expected("compose")[name])


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(expected("workflows")))
async def test_workflows(agent_client, name: str) -> None:
    client, runtime = await agent_client("devops")
    copy_into(runtime.layers.workspace, "workflows")
    result = await client.call_tool("lint_workflow", {"path": f"workflows/{name}"})
    assert not result.is_error, result.content[0].text
    case = expected("workflows")[name]
    if "engine" in case:
        assert result.structured_content["engine"] == case["engine"]
    check(result.structured_content, case)


@pytest.mark.anyio
async def test_secrets_tree(agent_client) -> None:
    client, runtime = await agent_client("devops")
    copy_into(runtime.layers.workspace, "secrets")
    for path in (runtime.layers.workspace / "secrets").rglob("*"):
        if path.is_file():
            text = path.read_text()
            for key, value in FILL.items():
                text = text.replace("{{" + key + "}}", value)
            path.write_text(text)
    result = await client.call_tool("scan_secrets", {"path": "secrets/repo"})
    assert not result.is_error, result.content[0].text
    report = result.structured_content
    found = {(f["file"], f["line"], f["rule"], f["severity"]) for f in report["findings"]}
    assert found == {("secrets/" + f, line, rule, sev) for f, line, rule, sev in expected("secrets")["findings"]}
    text = str(report)
    assert not [value for value in FILL.values() if value in text]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(expected("solutions")))
async def test_unpacked_solutions(agent_client, name: str) -> None:
    client, runtime = await agent_client("platform")
    copy_into(runtime.layers.workspace, "solutions")
    result = await client.call_tool("inspect_solution", {"path": f"solutions/{name}"})
    assert not result.is_error, result.content[0].text
    case, report = expected("solutions")[name], result.structured_content
    assert report["layout"] == case["layout"] and report["version_valid"] is case["version_valid"]
    assert {(c["kind"], c["name"]) for c in report["components"]} == {tuple(c) for c in case["components"]}
