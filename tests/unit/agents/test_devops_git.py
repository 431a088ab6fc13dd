"""git tools on real repositories created with `git init` in the agent's workspace."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

IDENTITY = ["-c", "user.name=Ada Dev", "-c", "user.email=ada@example.com", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("print('one')\n")
    (root / "notes.txt").write_text("a\nb\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first commit")
    (root / "app.py").write_text("print('two')\nprint('three')\n")
    git(root, "commit", "-q", "-am", "second commit")
    git(root, "branch", "release/1.0")
    git(root, "branch", "feat/login")
    return root


@pytest.mark.anyio
async def test_status_shows_staged_unstaged_untracked_and_renames(agent_client) -> None:
    client, runtime = await agent_client("devops")
    repo = make_repo(runtime.layers.workspace / "proj")
    (repo / "app.py").write_text("changed\n")
    (repo / "new file.txt").write_text("x\n")
    git(repo, "mv", "notes.txt", "docs.txt")
    result = await client.call_tool("git_status", {"repo": "proj"})
    assert not result.is_error, result.content[0].text
    s = result.structured_content
    assert s["branch"] == "main" and len(s["commit"]) == 40 and not s["clean"]
    assert s["staged"] == [{"path": "docs.txt", "status": "renamed", "orig_path": "notes.txt"}]
    assert s["unstaged"] == [{"path": "app.py", "status": "modified", "orig_path": None}]
    assert s["untracked"] == ["new file.txt"]


@pytest.mark.anyio
async def test_log_diff_and_branches(agent_client) -> None:
    client, runtime = await agent_client("devops")
    repo = make_repo(runtime.layers.workspace / "proj")
    log = (await client.call_tool("git_log", {"repo": "proj", "limit": 5})).structured_content
    assert [c["subject"] for c in log["commits"]] == ["second commit", "first commit"]
    assert log["commits"][0]["author"] == "Ada Dev" and log["commits"][1]["parents"] == []
    only_notes = (await client.call_tool("git_log", {"repo": "proj", "path": "notes.txt"})).structured_content
    assert [c["subject"] for c in only_notes["commits"]] == ["first commit"]

    diff = (await client.call_tool("git_diff", {"repo": "proj", "base": "HEAD~1", "target": "HEAD"})).structured_content
    assert diff["files"] == [{"path": "app.py", "added": 2, "deleted": 1, "binary": False}]
    assert diff["compared"] == "HEAD~1..HEAD" and "+print('three')" in diff["patch"]
    (repo / "notes.txt").write_text("a\n")
    git(repo, "add", "notes.txt")
    staged = (await client.call_tool("git_diff", {"repo": "proj", "staged": True})).structured_content
    assert staged["files"][0]["path"] == "notes.txt" and staged["deleted"] == 1
    capped = (
        await client.call_tool("git_diff", {"repo": "proj", "staged": True, "max_patch_chars": 10})
    ).structured_content
    assert capped["patch_truncated"] and len(capped["patch"]) == 10

    branches = (await client.call_tool("git_branches", {"repo": "proj"})).structured_content
    by_name = {b["name"]: b for b in branches["branches"]}
    assert branches["current"] == "main" and set(by_name) == {"main", "release/1.0", "feat/login"}
    # protected per context/team/processes.json: main and release/*
    assert by_name["main"]["protected"] and by_name["release/1.0"]["protected"]
    assert not by_name["feat/login"]["protected"]


@pytest.mark.anyio
async def test_clone_from_workspace_and_refusals(agent_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_GIT_ALLOW_FILE", "true")  # a local path is cloned over the file transport
    client, runtime = await agent_client("devops")
    make_repo(runtime.layers.workspace / "origin")
    result = await client.call_tool("git_clone", {"source": "origin", "dest": "copies/one", "branch": "feat/login"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["branch"] == "feat/login"
    assert (runtime.layers.workspace / "copies" / "one" / "app.py").read_text() == "print('two')\nprint('three')\n"
    status = (await client.call_tool("git_status", {"repo": "copies/one"})).structured_content
    assert status["upstream"] == "origin/feat/login" and status["clean"]

    again = await client.call_tool("git_clone", {"source": "origin", "dest": "copies/one"})
    assert again.is_error and "already exists" in again.content[0].text
    outside = await client.call_tool("git_clone", {"source": "../../etc", "dest": "x"})
    assert outside.is_error and "outside" in outside.content[0].text
    option = await client.call_tool("git_clone", {"source": "--upload-pack=touch /tmp/pwned", "dest": "y"})
    assert option.is_error and "not a repository" in option.content[0].text


@pytest.mark.anyio
async def test_clone_from_an_unreachable_url_says_why(agent_client) -> None:
    client, _ = await agent_client("devops")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await client.call_tool("git_clone", {"source": f"http://127.0.0.1:{port}/acme/app.git", "dest": "app"})
    assert result.is_error
    assert "git clone of" in result.content[0].text and "failed" in result.content[0].text


@pytest.mark.anyio
async def test_not_a_repository_and_bad_revisions(agent_client) -> None:
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "plain").mkdir()
    result = await client.call_tool("git_status", {"repo": "plain"})
    assert result.is_error and "not a git repository" in result.content[0].text
    make_repo(runtime.layers.workspace / "proj")
    injected = await client.call_tool("git_log", {"repo": "proj", "ref": "--output=/tmp/x"})
    assert injected.is_error and "not a valid git revision" in injected.content[0].text
    unknown = await client.call_tool("git_log", {"repo": "proj", "ref": "no-such-branch"})
    assert unknown.is_error and "git log failed" in unknown.content[0].text
    missing = await client.call_tool("git_branches", {"repo": "../elsewhere"})
    assert missing.is_error and "outside" in missing.content[0].text
    empty = runtime.layers.workspace / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    log = (await client.call_tool("git_log", {"repo": "empty"})).structured_content
    assert log["commits"] == []
