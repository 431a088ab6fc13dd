"""Hostile repositories against the real agents' tools (git_*, run_pytest) with the real sandbox: every
payload would leave a marker file in the workspace, which the sandbox uids may write, so a missing
marker means the payload never ran (not that it could not write)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reynolds.client import connect
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.anyio
IDENTITY = ["-c", "user.name=Eve", "-c", "user.email=eve@example.com", "-c", "commit.gpgsign=false"]
TOKEN = "agent-token-that-must-not-leak"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True)


def payload(workspace: Path, name: str) -> str:
    """A shell command that leaves ``<workspace>/<name>`` behind when it runs."""
    return f"sh -c 'touch {workspace / name}; cat'"


def bare_repo(path: Path, config: dict[str, str]) -> None:
    git(path.parent, "init", "-q", "--bare", str(path))
    for key, value in config.items():
        git(path.parent, "config", "--file", str(path / "config"), key, value)


def repo_with_one_commit(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("print('one')\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


async def test_an_embedded_bare_repo_with_diff_external_runs_nothing(agent_client) -> None:
    client, runtime = await agent_client("devops")
    ws = runtime.layers.workspace
    repo = repo_with_one_commit(ws / "proj")
    bare_repo(repo / "evil", {"diff.external": f"{ws}/ext-diff.sh", "core.fsmonitor": payload(ws, "bare-fsmonitor")})
    (ws / "ext-diff.sh").write_text(f"#!/bin/sh\ntouch {ws / 'bare-diff'}\n")
    (ws / "ext-diff.sh").chmod(0o755)
    git(repo, "add", "evil")
    git(repo, "commit", "-q", "-m", "vendor a repo")

    inside = await client.call_tool("git_diff", {"repo": "proj/evil"})
    assert inside.is_error  # a bare repo is never discovered, so its config is never read
    status = await client.call_tool("git_status", {"repo": "proj/evil/refs"})
    assert status.is_error
    (repo / "app.py").write_text("print('two')\n")
    outer = await client.call_tool("git_diff", {"repo": "proj"})
    assert not outer.is_error and outer.structured_content["files"][0]["path"] == "app.py"
    assert not (ws / "bare-diff").exists() and not (ws / "bare-fsmonitor").exists()


async def test_config_filters_textconv_diff_driver_fsmonitor_and_hooks_run_nothing(agent_client) -> None:
    client, runtime = await agent_client("devops")
    ws = runtime.layers.workspace
    repo = repo_with_one_commit(ws / "proj")
    hooks = repo / ".git" / "hooks"
    for hook in ("post-index-change", "reference-transaction", "pre-commit", "post-checkout"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {ws / ('hook-' + hook)}\n")
        (hooks / hook).chmod(0o755)
    settings = {
        "filter.evil.clean": payload(ws, "filter-clean"),
        "filter.evil.smudge": payload(ws, "filter-smudge"),
        "filter.Evil.Twin.process": payload(ws, "filter-process"),
        "diff.evil.textconv": payload(ws, "textconv"),
        "diff.evil.command": payload(ws, "diff-command"),
        "diff.external": payload(ws, "diff-external"),
        "core.fsmonitor": payload(ws, "fsmonitor"),
        "core.pager": payload(ws, "pager"),
        "core.hooksPath": str(hooks),
    }
    for key, value in settings.items():
        git(repo, "config", key, value)
    (repo / ".gitattributes").write_text("*.py filter=evil diff=evil\n*.txt filter=Evil.Twin\n")
    (repo / "app.py").write_text("print('two')\n")
    (repo / "notes.txt").write_text("new\n")

    for tool, args in [
        ("git_status", {"repo": "proj"}),
        ("git_diff", {"repo": "proj"}),
        ("git_diff", {"repo": "proj", "base": "HEAD"}),
        ("git_log", {"repo": "proj", "limit": 3}),
        ("git_branches", {"repo": "proj"}),
    ]:
        result = await client.call_tool(tool, args)
        assert not result.is_error, (tool, result.content[0].text)
    markers = sorted(p.name for p in ws.iterdir() if p.is_file())
    assert markers == [], f"repository programs ran: {markers}"


async def test_a_filter_name_git_cannot_override_is_refused(agent_client) -> None:
    client, runtime = await agent_client("devops")
    repo = repo_with_one_commit(runtime.layers.workspace / "proj")
    (repo / ".git" / "config").write_text('[filter "a=b"]\n\tclean = touch pwned\n', encoding="utf-8")
    result = await client.call_tool("git_status", {"repo": "proj"})
    assert result.is_error and "filter driver 'a=b'" in result.content[0].text


async def test_a_symlink_out_of_the_workspace_is_no_way_out(agent_client, tmp_path: Path) -> None:
    client, runtime = await agent_client("devops")
    ws = runtime.layers.workspace
    private = tmp_path / "agent-private"
    private.mkdir(mode=0o700)
    (private / "secret.txt").write_text(TOKEN)
    repo = repo_with_one_commit(ws / "proj")
    (repo / "out").symlink_to(private)
    git(repo, "add", "out")
    git(repo, "commit", "-q", "-m", "a link out")
    refused = await client.call_tool("git_status", {"repo": "proj/out"})
    assert refused.is_error and "outside" in refused.content[0].text
    result = await runtime.sandbox.run(["sh", "-c", "cat out/secret.txt; echo x > out/written"], cwd="proj")
    assert result.exit_code != 0 and TOKEN not in result.stdout
    assert "Permission denied" in result.stderr and not (private / "written").exists()


HOSTILE_TESTS = """
import json, os, socket, subprocess, sys, time
from pathlib import Path

def attempt(fn):
    try:
        return "LEAKED: " + str(fn())
    except Exception as err:
        return f"blocked: {type(err).__name__}"

def test_escape():
    found = {
        "token_file": attempt(lambda: Path(os.environ.get("AGENT_TOKEN_FILE", "TOKEN_PATH")).read_text()),
        "token_file_by_path": attempt(lambda: Path("TOKEN_PATH").read_text()),
        "env": "LEAKED" if "AGENT_TOKEN" in os.environ else "blocked",
        "agent_environ": attempt(lambda: Path("/proc/AGENT_PID/environ").read_bytes()),
        "write_outside": attempt(lambda: Path("OUTSIDE/pwned").write_text("x")),
        "redis": attempt(lambda: socket.create_connection(("127.0.0.1", 6379), timeout=5)),
    }
    child = subprocess.Popen(["setsid", "sh", "-c", "sleep 300 & echo $! > DETACHED; wait"])
    while not Path("DETACHED").exists() or not Path("DETACHED").read_text().strip():
        time.sleep(0.01)
    Path("found.json").write_text(json.dumps(found))
"""


async def test_a_test_suite_cannot_reach_the_agent_or_outlive_the_call(
    agent_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "agent_token").write_text(TOKEN)
    monkeypatch.setenv("AGENT_TOKEN_FILE", str(secrets / "agent_token"))
    monkeypatch.setenv("AGENT_TOKEN", TOKEN)
    outside = tmp_path / "outside"
    outside.mkdir()
    client, runtime = await agent_client("code")
    ws = runtime.layers.workspace
    tests = ws / "proj" / "tests"
    tests.mkdir(parents=True)
    source = HOSTILE_TESTS.replace("TOKEN_PATH", str(secrets / "agent_token")).replace("AGENT_PID", str(os.getpid()))
    (tests / "test_escape.py").write_text(source.replace("OUTSIDE", str(outside)))

    result = await client.call_tool("run_pytest", {"path": "proj"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["passed"] == 1, result.structured_content["output_tail"]
    found = json.loads((ws / "proj" / "found.json").read_text())
    assert all(v.startswith("blocked") for v in found.values()), found
    assert TOKEN not in json.dumps(result.structured_content)
    assert not (outside / "pwned").exists()
    detached = int((ws / "proj" / "DETACHED").read_text())
    assert gone(detached), f"the detached child {detached} outlived the call"


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def test_the_workspace_copy_of_a_package_is_what_gets_tested(agent_client, tmp_path: Path) -> None:
    client, runtime = await agent_client("code")
    proj = runtime.layers.workspace / "proj"
    (proj / "src" / "click").mkdir(parents=True)  # click is installed in the agent's environment too
    (proj / "src" / "click" / "__init__.py").write_text("WHERE = 'workspace'\n")
    (proj / "tests").mkdir()
    (proj / "tests" / "test_which.py").write_text(
        "import click\n\ndef test_it():\n    assert click.WHERE == 'workspace'\n"
    )
    elsewhere = tmp_path / "elsewhere.xml"  # pytest.ini's addopts would move the report and drop collection
    (proj / "pytest.ini").write_text(f"[pytest]\naddopts = -p no:python --junitxml={elsewhere}\n")
    result = await client.call_tool("run_pytest", {"path": "proj"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["passed"] == 1, result.structured_content["output_tail"]
    assert not elsewhere.exists()


async def test_over_http_a_test_suite_cannot_read_the_agent_process_secrets(reynolds_cluster: Cluster) -> None:
    c = reynolds_cluster
    token_file = c.workdir / "agent_token"  # 0600: the agent refuses to run anything while others can read it
    c.start_reynolds()
    agent = c.start_agent("code")
    assert agent.popen is not None
    proj = Path(agent.env["WORKSPACE_DIR"]) / "proj"
    (proj / "tests").mkdir(parents=True)
    outside = c.workdir / "outside"
    outside.mkdir()
    source = HOSTILE_TESTS.replace("TOKEN_PATH", str(token_file)).replace("AGENT_PID", str(agent.popen.pid))
    (proj / "tests" / "test_escape.py").write_text(source.replace("OUTSIDE", str(outside)))

    async with connect(f"http://127.0.0.1:{agent.port}/mcp", c.agent_token) as client:
        result = await client.call_tool("run_pytest", {"path": "proj"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["passed"] == 1, result.structured_content["output_tail"]
    found = json.loads((proj / "found.json").read_text())
    assert all(v.startswith("blocked") for v in found.values()), found
    assert c.agent_token not in json.dumps(result.structured_content)
    assert gone(int((proj / "DETACHED").read_text()))
