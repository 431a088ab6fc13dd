"""Task workspaces (reynolds/workspaces.py) on real files and real git repositories: sources, pinning,
baselines and diffs, reads, caps, expiry, and hostile specs that must change nothing."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from reynolds import errors
from reynolds import workspaces as ws
from reynolds.config import Settings
from reynolds.models import WorkspaceSpec

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
GIT_ENV["GIT_COMMITTER_EMAIL"] = "t@t"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "projects").mkdir()
    return Settings(
        workspaces_dir=tmp_path / "workspaces",
        projects_dir=tmp_path / "projects",
        workspace_allow_file_urls=True,
        workspace_diff_max_bytes=4096,
        workspace_max_bytes=1_000_000,
    )


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with two commits on main, a tag v1 on the first and a branch `feature`."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    git(repo, "tag", "v1")
    git(repo, "checkout", "-qb", "feature")
    (repo / "feature.py").write_text("f = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "app.py").write_text("x = 2\n")
    git(repo, "commit", "-qam", "two")
    return repo


def prepare(settings: Settings, spec: WorkspaceSpec | None = None) -> tuple[str, Any]:
    task_id = str(uuid.uuid4())
    return task_id, anyio.run(ws.prepare, settings, task_id, spec)


def left_behind(settings: Settings) -> list[str]:
    root = settings.workspaces_dir
    found = [p.name for p in root.iterdir() if p.name != ws.BASELINES] if root.is_dir() else []
    baselines = root / ws.BASELINES
    return found + ([p.name for p in baselines.iterdir()] if baselines.is_dir() else [])


def test_scratch_workspace_is_empty_and_its_new_files_are_the_changes(settings: Settings) -> None:
    task_id, view = prepare(settings)
    tree = Path(view.path)
    assert view.source == "scratch" and tree == settings.workspaces_dir / task_id and list(tree.iterdir()) == []
    (tree / "notes.txt").write_text("hello\n")
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")  # what running code leaves is not a change
    changes = ws.changes_sync(settings, task_id, scratch=True)
    assert changes.files == ["notes.txt"] and "+hello" in changes.diff and not changes.truncated


def test_an_empty_scratch_workspace_costs_no_git_and_has_no_changes(settings: Settings) -> None:
    task_id, _view = prepare(settings)
    assert not ws.baseline_of(settings, task_id).exists()  # made only when the tree has files at the end
    changes = ws.changes_sync(settings, task_id, scratch=True)
    assert changes.files == [] and changes.diff == "" and not ws.baseline_of(settings, task_id).exists()
    with pytest.raises(errors.NotFound):  # a clone's or copy's missing baseline is not an empty one
        ws.changes_sync(settings, task_id)


def test_project_is_copied_and_the_source_never_changes(settings: Settings, tmp_path: Path) -> None:
    project = settings.projects_dir / "demo"
    (project / ".venv").mkdir(parents=True)
    (project / "src").mkdir()
    (project / "src" / "mod.py").write_text("a=1\n")
    (project / ".venv" / "big").write_text("x" * 100)
    (project / "outside").symlink_to(tmp_path)
    os.mkfifo(project / "pipe")
    task_id, view = prepare(settings, WorkspaceSpec(project="demo"))
    tree = Path(view.path)
    assert (tree / "src" / "mod.py").read_text() == "a=1\n"
    assert not (tree / ".venv").exists() and not (tree / "pipe").exists()
    assert (tree / "outside").is_symlink() and os.readlink(tree / "outside") == str(tmp_path)
    assert any(".venv" in n for n in view.notes) and any("pipe" in n for n in view.notes)
    (tree / "src" / "mod.py").write_text("a = 1\n")
    assert (project / "src" / "mod.py").read_text() == "a=1\n"
    changes = ws.changes_sync(settings, task_id)
    assert changes.files == ["src/mod.py"] and "-a=1" in changes.diff and "+a = 1" in changes.diff


def test_the_projects_root_itself_is_a_project(settings: Settings) -> None:
    (settings.projects_dir / "README").write_text("root\n")
    _, view = prepare(settings, WorkspaceSpec(project="."))
    assert (Path(view.path) / "README").read_text() == "root\n"


def test_a_workspaces_root_inside_the_project_is_not_copied_into_itself(tmp_path: Path) -> None:
    settings = Settings(workspaces_dir=tmp_path / "proj" / ".state" / "ws", projects_dir=tmp_path / "proj")
    # (a project that is not a git repository: one that is would be refused, see below)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.txt").write_text("a")
    _, first = prepare(settings, WorkspaceSpec(project="."))
    _, second = prepare(settings, WorkspaceSpec(project="."))
    assert sorted(p.name for p in (Path(second.path) / ".state").iterdir()) == []
    assert (Path(first.path) / "a.txt").exists()


@pytest.mark.parametrize("name", ["../escape", "/etc", "a/../../b", "..", "sub\\..\\..", "nul\x00l"])
def test_project_names_that_escape_are_refused_and_change_nothing(settings: Settings, name: str) -> None:
    with pytest.raises(errors.WorkspaceError, match="relative name"):
        prepare(settings, WorkspaceSpec(project=name))
    assert left_behind(settings) == []


def test_symlinked_missing_and_file_projects_are_refused(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (settings.projects_dir / "link").symlink_to(tmp_path / "elsewhere")
    (settings.projects_dir / "file").write_text("x")
    for name, message in [("link", "outside the projects root"), ("file", "not a directory"), ("nope", "not a dir")]:
        with pytest.raises(errors.WorkspaceError, match=message):
            prepare(settings, WorkspaceSpec(project=name))
    assert left_behind(settings) == []


@pytest.mark.parametrize(
    ("ref", "expect"), [(None, "x = 2\n"), ("main", "x = 2\n"), ("v1", "x = 1\n"), ("feature", "x = 1\n")]
)
def test_git_workspace_is_pinned_to_the_resolved_commit(
    settings: Settings, origin: Path, ref: str | None, expect: str
) -> None:
    name = {None: "main", "main": "main", "v1": "v1", "feature": "feature"}[ref]
    expected = git(origin, "rev-parse", f"{name}^{{commit}}").strip()
    _, view = prepare(settings, WorkspaceSpec(git=f"file://{origin}", ref=ref))
    tree = Path(view.path)
    assert view.source == "git" and view.commit == expected and (tree / "app.py").read_text() == expect
    assert git(tree, "rev-parse", "HEAD").strip() == expected


def test_git_workspace_by_commit_sha(settings: Settings, origin: Path) -> None:
    first = git(origin, "rev-parse", "v1").strip()
    _, view = prepare(settings, WorkspaceSpec(git=f"file://{origin}", ref=first[:12]))
    assert view.commit == first


def test_the_diff_never_touches_the_repositorys_own_index(settings: Settings, origin: Path) -> None:
    task_id, view = prepare(settings, WorkspaceSpec(git=f"file://{origin}"))
    tree = Path(view.path)
    (tree / "app.py").write_text("x = 3\n")
    (tree / "new.py").write_text("n = 1\n")
    git(tree, "add", "new.py")
    before = git(tree, "status", "--porcelain")
    changes = ws.changes_sync(settings, task_id)
    assert git(tree, "status", "--porcelain") == before == " M app.py\nA  new.py\n"
    assert changes.files == ["app.py", "new.py"]


def test_unknown_ref_fails_and_leaves_nothing(settings: Settings, origin: Path) -> None:
    with pytest.raises(errors.WorkspaceError, match="not a branch, tag or commit"):
        prepare(settings, WorkspaceSpec(git=f"file://{origin}", ref="no-such-branch"))
    assert left_behind(settings) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ext::sh%-c%touch%/tmp/pwned", "transport 'ext' is not allowed"),
        ("http://example.com/r.git", "transport 'http' is not allowed"),
        ("git://example.com/r.git", "transport 'git' is not allowed"),
        ("/srv/repo.git", "file:// URL"),
        ("--upload-pack=touch /tmp/x", "not a git URL"),
        ("https://example.com/a b", "not a git URL"),
    ],
)
def test_git_urls_with_disallowed_transports_are_refused(settings: Settings, url: str, message: str) -> None:
    with pytest.raises(errors.WorkspaceError, match=message):
        prepare(settings, WorkspaceSpec(git=url))
    assert left_behind(settings) == []


def test_file_urls_need_the_setting(settings: Settings, origin: Path) -> None:
    strict = settings.model_copy(update={"workspace_allow_file_urls": False})
    with pytest.raises(errors.WorkspaceError, match="transport 'file' is not allowed"):
        prepare(strict, WorkspaceSpec(git=f"file://{origin}"))


@pytest.mark.parametrize("ref", ["-x", "a..b", "../../etc", "a b", "x" * 300])
def test_bad_refs_are_refused(settings: Settings, origin: Path, ref: str) -> None:
    with pytest.raises((errors.WorkspaceError, ValueError)):
        prepare(settings, WorkspaceSpec(git=f"file://{origin}", ref=ref))
    assert left_behind(settings) == []


def test_a_project_over_the_size_cap_is_refused_at_preparation(settings: Settings) -> None:
    (settings.projects_dir / "big").mkdir()
    (settings.projects_dir / "big" / "blob").write_bytes(b"\0" * 2_000_000)
    with pytest.raises(errors.WorkspaceTooLarge, match="REYNOLDS_WORKSPACE_MAX_BYTES"):
        prepare(settings, WorkspaceSpec(project="big"))
    assert left_behind(settings) == []


def test_a_clone_over_the_size_cap_is_refused(settings: Settings, origin: Path) -> None:
    small = settings.model_copy(update={"workspace_max_bytes": 1024})
    with pytest.raises(errors.WorkspaceTooLarge):
        prepare(small, WorkspaceSpec(git=f"file://{origin}"))
    assert left_behind(small) == []


def test_growth_past_the_cap_is_reported_after_a_step(settings: Settings) -> None:
    task_id, view = prepare(settings)
    assert anyio.run(ws.over_cap, settings, task_id) is None
    (Path(view.path) / "out.bin").write_bytes(b"\1" * 1_100_000)
    assert "over the cap of 1000000 bytes" in anyio.run(ws.over_cap, settings, task_id)


def test_a_large_diff_is_cut_and_its_full_size_told(settings: Settings) -> None:
    task_id, view = prepare(settings)
    (Path(view.path) / "many.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    changes = ws.changes_sync(settings, task_id, scratch=True)
    assert changes.truncated and len(changes.diff.encode()) == 4096 and changes.diff_bytes > 40_000


def test_binary_files_are_summarised_not_dumped(settings: Settings) -> None:
    task_id, view = prepare(settings)
    (Path(view.path) / "image.bin").write_bytes(bytes(range(256)) * 4)
    assert "Binary files" in ws.changes_sync(settings, task_id, scratch=True).diff


def test_an_embedded_repository_config_runs_nothing(settings: Settings, tmp_path: Path) -> None:
    """A project holding a bare repository whose config names an external diff, fsmonitor and hooks."""
    marker = tmp_path / "pwned"
    evil = settings.projects_dir / "evil"
    (evil / "inner.git").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(evil / "inner.git")], check=True)
    with (evil / "inner.git" / "config").open("a") as f:
        f.write(f"[diff]\n\texternal = touch {marker}\n[core]\n\tfsmonitor = touch {marker}\n")
    (evil / "file.txt").write_text("a\n")
    task_id, view = prepare(settings, WorkspaceSpec(project="evil"))
    (Path(view.path) / "file.txt").write_text("b\n")
    assert "+b" in ws.changes_sync(settings, task_id).diff
    assert not marker.exists()


def test_reading_files_text_binary_and_refusals(settings: Settings, tmp_path: Path) -> None:
    task_id, view = prepare(settings)
    tree = Path(view.path)
    (tree / "a.txt").write_text("hello")
    (tree / "b.bin").write_bytes(b"\xff\x00")
    (tree / "link").symlink_to(tmp_path)
    assert ws.read_sync(settings, task_id, "a.txt").text == "hello"
    assert ws.read_sync(settings, task_id, "b.bin").base64 == "/wA="
    for path, error in [("../x", errors.InvalidRequest), ("/etc/passwd", errors.InvalidRequest)]:
        with pytest.raises(error, match="outside"):
            ws.read_sync(settings, task_id, path)
    with pytest.raises(errors.InvalidRequest, match="outside"):
        ws.read_sync(settings, task_id, "link/anything")
    with pytest.raises(errors.NotFound):
        ws.read_sync(settings, task_id, "missing.txt")
    (tree / "big").write_bytes(b"x" * (settings.workspace_read_max_bytes + 1))
    with pytest.raises(errors.WorkspaceTooLarge, match="read limit"):
        ws.read_sync(settings, task_id, "big")


class Ages:
    """The store's answer to 'when did these tasks end' (None: still running; missing: no such task)."""

    def __init__(self, ended: dict[str, float | None]) -> None:
        self.ended = ended

    async def workspace_ages(self, task_ids: list[str]) -> dict[str, float | None]:
        return {t: self.ended[t] for t in task_ids if t in self.ended}


def test_expiry_removes_only_trees_past_their_ttl(settings: Settings) -> None:
    old, recent, running, orphan = (prepare(settings)[0] for _ in range(4))
    now = time.time()
    store = Ages({old: now - 90_000, recent: now - 10, running: None})
    os.utime(settings.workspaces_dir / orphan, (now - 90_000, now - 90_000))
    removed = anyio.run(ws.expire, settings, store)
    assert sorted(removed) == sorted([old, orphan])
    assert sorted(left_behind(settings)) == sorted([recent, running])  # empty scratch trees have no baseline


def test_a_workspaces_root_inside_a_git_repository_is_refused(tmp_path: Path) -> None:
    """git run in a tree with no repository of its own would find the one around the workspaces root."""
    (tmp_path / "repo").mkdir()
    git(tmp_path / "repo", "init", "-q")
    settings = Settings(workspaces_dir=tmp_path / "repo" / "ws", projects_dir=tmp_path)
    with pytest.raises(errors.WorkspaceError, match="inside the git repository"):
        prepare(settings)
    assert left_behind(settings) == []


def acl(path: Path) -> str:
    return subprocess.run(["getfacl", "-p", "--omit-header", str(path)], capture_output=True, text=True).stdout


def test_a_scratch_tree_is_shared_from_birth_and_baselines_never_are(settings: Settings) -> None:
    """The root's default ACL shares a new scratch tree with the sandbox group without a setfacl of its own;
    what sandbox uids may write never reaches the baselines Reynolds runs git on."""
    task_id, view = prepare(settings)
    tree = Path(view.path)
    for entry in ("group:20000:rwx", "default:group:20000:rwx"):
        assert entry in acl(tree)
    (tree / "out.txt").write_text("x\n")
    ws.changes_sync(settings, task_id, scratch=True)  # makes its empty baseline now
    for private in (settings.workspaces_dir / ws.BASELINES, ws.baseline_of(settings, task_id)):
        assert "20000" not in acl(private), private
    assert "group:20000" not in acl(settings.workspaces_dir).replace("default:group:20000", "")
