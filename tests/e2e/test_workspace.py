"""Task workspaces under docker compose: a project from the mounted projects root is copied once into the
shared ``workspaces`` volume, and every step — on any of the 3 code and 3 devops replicas — works on that
same tree; the diff of what the task changed is in its result; an agent killed mid-task loses nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import System, Tool, by_id, eventually, explain
from tests.e2e.test_system import wait_done

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

REPO = Path(__file__).resolve().parents[2]
PROJECTS = Path(os.environ.get("REYNOLDS_PROJECTS_DIR", REPO / "projects"))
FAKE_KEY = "AKIA" + "E2EWORKSPACE0000"  # an AWS-shaped key id for scan_secrets to find


@pytest.fixture
def project() -> Iterator[tuple[str, str]]:
    """(name, marker): a small git project under the projects root, with an unformatted module, an unused
    import for lint, a fake key for the secret scan and a test whose name carries the marker."""
    marker = uuid.uuid4().hex[:8]
    name = f"e2e-{marker}"
    root = PROJECTS / name
    files = {
        "pkg/__init__.py": "",
        "pkg/calc.py": "import os\ndef add( a,b ):\n    return a+b\n",
        "pkg/settings.py": f'KEY_ID = "{FAKE_KEY}"\n',
        "tests/test_calc.py": f"from pkg.calc import add\n\n\ndef test_add_{marker}():\n    assert add(1, 2) == 3\n",
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@x", "GIT_COMMITTER_NAME": "e2e"}
    env["GIT_COMMITTER_EMAIL"] = "e2e@x"
    for argv in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "start"]):
        subprocess.run(["git", "-C", str(root), *argv], env=env, check=True, capture_output=True)
    try:
        yield name, marker
    finally:
        shutil.rmtree(root)


async def test_workspace_project_every_step_sees_the_same_tree(
    system: System, tool: Tool, project: tuple[str, str]
) -> None:
    name, marker = project
    plan = {
        "subtasks": [
            {"id": "analyse", "tool": "analyze_python", "arguments": {"path": "."}},
            {"id": "lint", "tool": "lint_python", "arguments": {"path": "."}},
            {"id": "scan", "tool": "scan_secrets", "arguments": {"path": "."}},
            {"id": "pytest", "tool": "run_pytest", "arguments": {"path": "."}},
            {
                "id": "format",
                "tool": "format_python",
                "arguments": {"path": ".", "check_only": False},
                "depends_on": ["analyse", "lint", "scan", "pytest"],
            },
            {"id": "diff", "tool": "git_diff", "arguments": {"repo": "."}, "depends_on": ["format"]},
        ]
    }
    task = await tool("orchestrate", plan=plan, workspace={"project": name}, wait=True)
    steps = by_id(task)
    assert task["state"] == "succeeded", explain(task)
    assert {m["file"] for m in steps["analyse"]["result"]["modules"]} >= {"pkg/calc.py", "pkg/settings.py"}
    assert any(f["file"] == "pkg/calc.py" and f["code"] == "F401" for f in steps["lint"]["result"]["findings"])
    assert any(f["file"] == "pkg/settings.py" for f in steps["scan"]["result"]["findings"])
    assert [t["name"].rsplit("::", 1)[-1] for t in steps["pytest"]["result"]["tests"]] == [f"test_add_{marker}"]
    assert "pkg/calc.py" in steps["format"]["result"]["files"]
    assert "pkg/calc.py" in [f["path"] for f in steps["diff"]["result"]["files"]]
    assert "+def add(a, b):" in steps["diff"]["result"]["patch"]
    workspace = task["workspace"]
    assert workspace["source"] == "project" and workspace["path"] == f"/app/workspaces/{task['task_id']}"
    assert "pkg/calc.py" in workspace["changes"]["files"] and "+def add(a, b):" in workspace["changes"]["diff"]
    assert (PROJECTS / name / "pkg" / "calc.py").read_text().startswith("import os\ndef add( a,b ):")
    print("replicas used:", {s["id"]: s["agent_id"] for s in task["subtasks"]})


async def test_workspace_survives_an_agent_killed_mid_task(
    system: System, tool: Tool, project: tuple[str, str]
) -> None:
    """write_file on a workbench replica, then a long sleep whose replica is killed, then read_file: the retry
    runs on the other replica and the read sees what the first step wrote on the shared volume."""
    name, marker = project
    plan = {
        "subtasks": [
            {"id": "write", "tool": "write_file", "arguments": {"path": "out/note.txt", "text": marker}},
            {"id": "wait", "tool": "sleep", "arguments": {"seconds": 8}, "depends_on": ["write"]},
            {"id": "read", "tool": "read_file", "arguments": {"path": "out/note.txt"}, "depends_on": ["wait"]},
        ]
    }
    task = await tool("orchestrate", plan=plan, workspace={"project": name}, wait=False)

    async def sleeping_on() -> str | None:
        sub = by_id(await tool("get_task", task_id=task["task_id"]))["wait"]
        return sub["agent_id"] if sub["state"] == "running" and sub["agent_id"] else None

    victim_id = await eventually(sleeping_on, 60, "the sleep step to start", every=0.3)
    victims = [c for c in system.containers("workbench-agent") if c.id.startswith(victim_id) or c.name == victim_id]
    assert len(victims) == 1, f"no workbench container for agent {victim_id}"
    victims[0].kill()
    try:
        done = await wait_done(tool, task["task_id"], 120)
    finally:
        victims[0].start()
    steps = by_id(done)
    assert done["state"] == "succeeded", explain(done)
    assert steps["wait"]["attempts"] >= 2 and steps["wait"]["agent_id"] != victim_id
    assert steps["read"]["result"]["text"] == marker
    assert done["workspace"]["changes"]["files"] == ["out/note.txt"]

    async def both_back() -> bool:
        view = await tool("list_agents")
        pool = next((p["replicas"] for p in view["pools"] if p["pool"] == "workbench"), [])
        return sum(r["healthy"] for r in pool) == 2

    await eventually(both_back, 60, "the restarted workbench replica to rejoin")
