"""Task workspaces across a real cluster: Reynolds and agent processes over HTTP, real Postgres and Redis,
real git repositories. One tree per task, seen by every step on any replica of any pool; sources never
modified; pinned commits and bounded diffs in the result; reading through the resource and the CLI;
hostile specs refused with nothing stored; removal after the TTL; the size cap at preparation and after steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from reynolds.client import call
from tests.integration.cluster import REPO, Cluster, Proc, cluster
from tests.integration.conftest import run_plan, sql, subtask, wait_until

pytestmark = pytest.mark.anyio
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
GIT_ENV["GIT_COMMITTER_EMAIL"] = "t@t"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True, text=True)
    return done.stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", ".")
    git(path, "commit", "-qm", "start")
    return path


@pytest.fixture(scope="module")
def system() -> Iterator[tuple[Cluster, Proc, Path]]:
    """Reynolds with a projects root and file:// clones allowed, a code, a devops and a workbench agent.
    (Not under pytest's 0700 tmp dir: sandboxed commands run as other uids and must reach the workspaces.)"""
    base = Path(tempfile.mkdtemp(prefix="reynolds-ws-"))
    base.chmod(0o711)
    projects = base / "projects"
    make_repo(projects / "demo", {"pkg/mod.py": "x=1\ndef f( a ):\n  return a\n", "README.md": "demo\n"})
    with cluster(base / "cluster", REYNOLDS_PROJECTS_DIR=str(projects), REYNOLDS_WORKSPACE_ALLOW_FILE_URLS="true") as c:
        reynolds = c.start_reynolds()
        agents = [c.start_agent(kind, reynolds=reynolds) for kind in ("code", "devops", "workbench")]
        c.wait_registered([a.name for a in agents])
        yield c, reynolds, projects
    shutil.rmtree(base, ignore_errors=True)


def tree(c: Cluster, task_id: str) -> Path:
    return c.workdir / "workspaces" / task_id


async def test_a_step_writes_what_the_next_step_sees_on_another_pool(system: tuple[Cluster, Proc, Path]) -> None:
    """format_python on the code agent rewrites the copy; git_diff on the devops agent sees it; the project
    itself is untouched; the task's result carries the same change as its diff."""
    c, _, projects = system
    plan = {
        "subtasks": [
            {"id": "fmt", "tool": "format_python", "arguments": {"path": ".", "check_only": False}},
            {"id": "diff", "tool": "git_diff", "arguments": {"repo": "."}, "depends_on": ["fmt"]},
        ]
    }
    async with c.client() as client:
        task = await run_plan(client, plan, timeout_s=60, workspace={"project": "demo"})
    assert task["state"] == "succeeded", [(s["id"], s["error"]) for s in task["subtasks"]]
    fmt, diff = subtask(task, "fmt"), subtask(task, "diff")
    assert fmt["agent_id"] != diff["agent_id"] and fmt["pool"] == "code" and diff["pool"] == "devops"
    assert [f["path"] for f in diff["result"]["files"]] == ["pkg/mod.py"] and "+x = 1" in diff["result"]["patch"]
    workspace = task["workspace"]
    assert workspace["source"] == "project" and workspace["location"] == "demo"
    assert workspace["path"] == str(tree(c, task["task_id"]))
    assert workspace["changes"]["files"] == ["pkg/mod.py"] and "+x = 1" in workspace["changes"]["diff"]
    assert (projects / "demo" / "pkg" / "mod.py").read_text().startswith("x=1\n")
    assert git(projects / "demo", "status", "--porcelain") == ""


async def test_git_workspace_is_pinned_and_the_source_never_changes(
    system: tuple[Cluster, Proc, Path], tmp_path: Path
) -> None:
    c, _, _ = system
    origin = make_repo(tmp_path / "origin", {"app.py": "v = 1\n"})
    pinned = git(origin, "rev-parse", "HEAD").strip()
    git(origin, "checkout", "-qb", "later")
    (origin / "app.py").write_text("v = 2\n")
    git(origin, "commit", "-qam", "later")
    plan = {
        "subtasks": [
            {"id": "write", "tool": "write_file", "arguments": {"path": "notes/new.txt", "text": "written\n"}},
            {"id": "read", "tool": "read_file", "arguments": {"path": "app.py"}, "depends_on": ["write"]},
            {"id": "again", "tool": "read_file", "arguments": {"path": "notes/new.txt"}, "depends_on": ["write"]},
        ]
    }
    async with c.client() as client:
        task = await run_plan(client, plan, timeout_s=60, workspace={"git": f"file://{origin}", "ref": "main"})
    assert task["state"] == "succeeded", task
    assert task["workspace"]["commit"] == pinned and task["workspace"]["ref"] == "main"
    assert subtask(task, "read")["result"]["text"] == "v = 1\n"
    assert subtask(task, "again")["result"]["text"] == "written\n"
    assert task["workspace"]["changes"]["files"] == ["notes/new.txt"]
    assert not (origin / "notes").exists() and git(origin, "status", "--porcelain") == ""


async def test_workspace_files_and_diff_are_read_by_resource_and_cli(
    system: tuple[Cluster, Proc, Path],
) -> None:
    c, reynolds, _ = system
    plan = {"subtasks": [{"id": "w", "tool": "write_file", "arguments": {"path": "out/r.txt", "text": "result\n"}}]}
    async with c.client() as client:
        task = await run_plan(client, plan, timeout_s=60)
        task_id = task["task_id"]
        found = json.loads(
            (await client.read_resource(f"reynolds://tasks/{task_id}/workspace/out/r.txt")).contents[0].text
        )
        assert found == {"path": "out/r.txt", "size_bytes": 7, "text": "result\n", "base64": None}
        for escape in ("..%2F..%2Fagent_token", "../../agent_token", "/etc/passwd"):  # the SDK or Reynolds says no
            with pytest.raises(Exception, match=r"outside|Unknown resource"):
                await client.read_resource(f"reynolds://tasks/{task_id}/workspace/{escape}")
    assert task["workspace"]["source"] == "scratch"
    cli = [sys.executable, "-m", "reynolds", "workspace", task_id, "--url", f"{reynolds.base_url}/mcp"]
    env = {**os.environ, "REYNOLDS_TOKEN": c.client_token}

    async def run_cli(*args: str) -> str:
        return (await anyio.run_process([*cli, *args], env=env, cwd=REPO)).stdout.decode()

    diff = await run_cli("--diff")
    assert "+++ b/out/r.txt" in diff and "+result" in diff
    assert await run_cli("out/r.txt") == "result\n"
    summary = await run_cli()
    assert "workspace: scratch" in summary and "out/r.txt" in summary


@pytest.mark.parametrize(
    ("workspace", "message"),
    [
        ({"project": "../cluster"}, "relative name"),
        ({"project": "/etc"}, "relative name"),
        ({"project": "demo/pkg/mod.py"}, "not a directory"),
        ({"project": "nope"}, "not a directory"),
        ({"git": "ext::sh%-c%touch%/tmp/pwned"}, "transport 'ext' is not allowed"),
        ({"git": "http://example.com/r.git"}, "transport 'http' is not allowed"),
        ({"git": "https://example.com/r.git", "project": "demo"}, "not both"),
        ({"ref": "main"}, '"ref" goes with "git"'),
    ],
)
async def test_hostile_workspace_specs_are_refused_and_change_nothing(
    system: tuple[Cluster, Proc, Path], workspace: dict[str, Any], message: str
) -> None:
    c, _, _ = system
    plan = {"subtasks": [{"id": "e", "tool": "echo", "arguments": {"value": 1}}]}
    before = sorted(p.name for p in (c.workdir / "workspaces").iterdir())
    (tasks_before,) = await sql(c, "SELECT count(*) AS n FROM tasks")
    async with c.client() as client:
        for tool in ("plan_task", "orchestrate"):
            with pytest.raises(Exception, match=message):
                await call(client, tool, {"plan": plan, "workspace": workspace})
    assert sorted(p.name for p in (c.workdir / "workspaces").iterdir()) == before
    assert (await sql(c, "SELECT count(*) AS n FROM tasks"))[0]["n"] == tasks_before["n"]


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[tuple[Cluster, Client | None]]:
    """A cluster whose workspaces expire a second after their task and may hold 64 KB."""
    projects = tmp_path / "projects"
    (projects / "big").mkdir(parents=True)
    (projects / "big" / "blob.bin").write_bytes(b"\0" * 100_000)
    with cluster(
        tmp_path / "cluster",
        REYNOLDS_PROJECTS_DIR=str(projects),
        REYNOLDS_WORKSPACE_TTL_S="1",
        REYNOLDS_WORKSPACE_MAX_BYTES="65536",
    ) as c:
        reynolds = c.start_reynolds()
        agent = c.start_agent("workbench", reynolds=reynolds)
        c.wait_registered([agent.name])
        yield c, None


async def test_workspace_is_removed_after_the_ttl_but_its_diff_stays(strict: tuple[Cluster, Any]) -> None:
    c, _ = strict
    plan = {"subtasks": [{"id": "w", "tool": "write_file", "arguments": {"path": "a.txt", "text": "a\n"}}]}
    async with c.client() as client:
        task = await run_plan(client, plan, timeout_s=60)
        assert task["state"] == "succeeded"

        async def gone() -> bool:
            return not tree(c, task["task_id"]).exists()

        await wait_until(gone, 30, "the workspace to be removed after REYNOLDS_WORKSPACE_TTL_S")
        later = await call(client, "get_task", {"task_id": task["task_id"]})
    assert later["workspace"]["changes"]["files"] == ["a.txt"]
    assert not (c.workdir / "workspaces" / ".baselines" / f"{task['task_id']}.git").exists()


async def test_size_cap_refuses_a_large_project_and_fails_a_task_that_grows_past_it(
    strict: tuple[Cluster, Any],
) -> None:
    c, _ = strict
    echo = {"subtasks": [{"id": "e", "tool": "echo", "arguments": {"value": 1}}]}
    grow = {
        "subtasks": [
            {"id": "big", "tool": "write_file", "arguments": {"path": "big.txt", "text": "x" * 70_000}},
            {"id": "next", "tool": "echo", "arguments": {"value": 2}, "depends_on": ["big"]},
        ]
    }
    async with c.client() as client:
        with pytest.raises(Exception, match="REYNOLDS_WORKSPACE_MAX_BYTES"):
            await call(client, "orchestrate", {"plan": echo, "workspace": {"project": "big"}})
        assert (await call(client, "list_tasks", {}))["total"] == 0
        task = await run_plan(client, grow, timeout_s=60)
    assert task["state"] == "failed" and "REYNOLDS_WORKSPACE_MAX_BYTES" in (task["error"] or ""), task
    assert subtask(task, "next")["state"] in ("cancelled", "skipped")
