"""GitHub tools: the agent's real PyGithub client over HTTP against tests/doubles/github_api.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.github_api import GitHubDouble

TOKEN = "ghs-test-token-123"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[GitHubDouble]:
    """The double, with GITHUB_TOKEN_FILE and GITHUB_BASE_URL pointing the agent at it."""
    token_file = tmp_path / "github-token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("GITHUB_WRITE_INTERVAL_S", "0")  # the double has no secondary rate limit
    with GitHubDouble(token=TOKEN) as double:
        monkeypatch.setenv("GITHUB_BASE_URL", double.url)
        double.add_repo("acme/app")
        yield double


def ok(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


@pytest.mark.anyio
async def test_issue_lifecycle(agent_client, github: GitHubDouble) -> None:
    client, _ = await agent_client("devops")
    created = ok(
        await client.call_tool(
            "github_create_issue",
            {"repo": "acme/app", "title": "CI is red on main", "body": "lint fails", "labels": ["ci"]},
        )
    )
    number = created["number"]
    # the team's default label (context/team/preferences.json) is added
    assert created["state"] == "open" and created["labels"] == ["ci", "reynolds"]
    listed = ok(await client.call_tool("github_list_issues", {"repo": "acme/app", "labels": ["ci"]}))
    assert [i["title"] for i in listed["issues"]] == ["CI is red on main"]

    updated = ok(
        await client.call_tool(
            "github_update_issue", {"repo": "acme/app", "number": number, "title": "CI red: lint", "assignees": ["ada"]}
        )
    )
    assert updated["title"] == "CI red: lint" and updated["assignees"] == ["ada"]
    comment = ok(
        await client.call_tool("github_comment_issue", {"repo": "acme/app", "number": number, "body": "on it"})
    )
    assert comment["body"].startswith("on it") and "posted by Reynolds" in comment["body"]

    closed = ok(
        await client.call_tool(
            "github_close_issue",
            {"repo": "acme/app", "number": number, "reason": "completed", "comment": "fixed in #9"},
        )
    )
    assert closed["state"] == "closed" and closed["state_reason"] == "completed" and closed["comments"] == 2
    still_open = ok(await client.call_tool("github_list_issues", {"repo": "acme/app"}))
    assert still_open["issues"] == []
    everything = ok(await client.call_tool("github_list_issues", {"repo": "acme/app", "state": "all"}))
    assert [i["number"] for i in everything["issues"]] == [number]
    assert ("PATCH", f"/repos/acme/app/issues/{number}") in github.requests


@pytest.mark.anyio
async def test_pull_requests(agent_client, github: GitHubDouble) -> None:
    client, _ = await agent_client("devops")
    first = github.add_pull("acme/app", "Add login", head="feat/login", additions=120, deletions=4, changed_files=3)
    github.add_pull("acme/app", "Docs", head="docs/readme", base="release/1.0")
    ok(await client.call_tool("github_create_issue", {"repo": "acme/app", "title": "not a PR"}))
    pulls = ok(await client.call_tool("github_list_pulls", {"repo": "acme/app"}))
    assert [p["title"] for p in pulls["pulls"]] == ["Docs", "Add login"]
    issues = ok(await client.call_tool("github_list_issues", {"repo": "acme/app"}))
    assert [i["title"] for i in issues["issues"]] == ["not a PR"]  # pull requests are left out
    detail = ok(await client.call_tool("github_get_pull", {"repo": "acme/app", "number": first}))
    assert detail["head"] == "feat/login" and detail["additions"] == 120 and detail["changed_files"] == 3
    comment = ok(await client.call_tool("github_comment_pull", {"repo": "acme/app", "number": first, "body": "LGTM"}))
    assert comment["number"] == first and github.repos["acme/app"].comments[first][0]["body"].startswith("LGTM")
    missing = await client.call_tool("github_get_pull", {"repo": "acme/app", "number": 99})
    assert missing.is_error and "not found (404)" in missing.content[0].text


@pytest.mark.anyio
async def test_workflow_runs_and_reruns(agent_client, github: GitHubDouble) -> None:
    client, _ = await agent_client("devops")
    failed = github.add_run("acme/app", "ci", "main", "completed", "failure")
    github.add_run("acme/app", "ci", "feat/x", "completed", "success")
    running = github.add_run("acme/app", "ci", "main", "in_progress", None)
    exhausted = github.add_run("acme/app", "ci", "main", "completed", "failure", attempt=3)
    runs = ok(await client.call_tool("github_list_workflow_runs", {"repo": "acme/app", "branch": "main"}))
    assert [r["id"] for r in runs["runs"]] == [exhausted, running, failed] and runs["failed"] == 2

    rerun = ok(await client.call_tool("github_rerun_failed_jobs", {"repo": "acme/app", "run_id": failed}))
    assert rerun["requested"] and rerun["previous_conclusion"] == "failure"
    assert ("POST", f"/repos/acme/app/actions/runs/{failed}/rerun-failed-jobs") in github.requests
    assert github.repos["acme/app"].runs[failed]["status"] == "queued"

    busy = await client.call_tool("github_rerun_failed_jobs", {"repo": "acme/app", "run_id": running})
    assert busy.is_error and "still in_progress" in busy.content[0].text
    # context/team/processes.json allows 2 re-runs; a third attempt is refused with the policy named
    too_many = await client.call_tool("github_rerun_failed_jobs", {"repo": "acme/app", "run_id": exhausted})
    assert too_many.is_error and "rerun_failed_jobs_max" in too_many.content[0].text


@pytest.mark.anyio
async def test_read_file_and_directory(agent_client, github: GitHubDouble) -> None:
    client, _ = await agent_client("devops")
    github.add_file("acme/app", ".github/workflows/ci.yml", b"on: push\n")
    github.add_file("acme/app", ".github/dependabot.yml", b"version: 2\n")
    github.add_file("acme/app", "logo.png", b"\x89PNG\r\n\x1a\n\x00\xff")
    github.add_file("acme/app", "VERSION", b"2.0.0\n", ref="release/2")
    f = ok(await client.call_tool("github_read_file", {"repo": "acme/app", "path": ".github/workflows/ci.yml"}))
    assert f["kind"] == "file" and f["content"] == "on: push\n" and f["size"] == 9
    d = ok(await client.call_tool("github_read_file", {"repo": "acme/app", "path": ".github"}))
    assert d["kind"] == "dir" and d["entries"] == ["dependabot.yml", "workflows/"]
    tagged = ok(await client.call_tool("github_read_file", {"repo": "acme/app", "path": "VERSION", "ref": "release/2"}))
    assert tagged["content"] == "2.0.0\n"
    binary = await client.call_tool("github_read_file", {"repo": "acme/app", "path": "logo.png"})
    assert binary.is_error and "binary" in binary.content[0].text
    assert base64.b64decode(base64.b64encode(b"x")) == b"x"


@pytest.mark.anyio
async def test_wrong_token_unknown_repo_and_bad_arguments(
    agent_client, github: GitHubDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = await agent_client("devops")
    unknown = await client.call_tool("github_list_issues", {"repo": "acme/nope"})
    assert unknown.is_error and "repository acme/nope not found (404)" in unknown.content[0].text
    bad_repo = await client.call_tool("github_list_issues", {"repo": "not a repo"})
    assert bad_repo.is_error  # schema validation: owner/name
    nothing = await client.call_tool("github_update_issue", {"repo": "acme/app", "number": 1})
    assert nothing.is_error and "nothing to update" in nothing.content[0].text
    monkeypatch.setenv("GITHUB_TOKEN", "wrong-token")  # a direct value wins over the file
    denied = await client.call_tool("github_list_issues", {"repo": "acme/app"})
    assert denied.is_error and "GitHub rejected the token (401 Bad credentials)" in denied.content[0].text


@pytest.mark.anyio
async def test_without_a_token_tools_say_how_to_configure(agent_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN_FILE", raising=False)
    client, _ = await agent_client("devops")
    result = await client.call_tool("github_list_issues", {"repo": "acme/app"})
    assert result.is_error
    assert "GitHub token not configured: set GITHUB_TOKEN_FILE" in result.content[0].text


@pytest.mark.anyio
async def test_unreadable_token_file_and_unreachable_server(
    agent_client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN_FILE", str(tmp_path / "missing-token"))
    client, _ = await agent_client("devops")
    missing = await client.call_tool("github_list_pulls", {"repo": "acme/app"})
    assert missing.is_error and "GITHUB_TOKEN_FILE" in missing.content[0].text
    monkeypatch.delenv("GITHUB_TOKEN_FILE")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with GitHubDouble() as gone:
        url = gone.url
    monkeypatch.setenv("GITHUB_BASE_URL", url)  # the server has stopped: nothing listens there now
    down = await client.call_tool("github_list_pulls", {"repo": "acme/app"})
    assert down.is_error and "cannot reach GitHub" in down.content[0].text
