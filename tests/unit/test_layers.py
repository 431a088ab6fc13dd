"""Paths stay inside their layer; structured layer files parse or say why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.runtime.errors import PathOutsideWorkspace, ToolError
from agents.runtime.layers import MAX_LAYER_FILE_BYTES, Layers, resolve_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "ws"
    (base / "src" / "pkg").mkdir(parents=True)
    (base / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    return base


@pytest.fixture
def layers(tmp_path: Path) -> Layers:
    found = Layers(tmp_path / "knowledge", tmp_path / "context", tmp_path / "memory", tmp_path / "workspace")
    found.knowledge.mkdir()
    found.context.mkdir()
    found.ensure_writable()
    return found


@pytest.mark.parametrize("path", ["src/pkg/mod.py", "src/../src/pkg", ".", "", "new/file.txt", "./src"])
def test_paths_inside_resolve_under_the_root(root: Path, path: str) -> None:
    resolved = resolve_inside(root, path)
    assert resolved == (root / path).resolve()
    assert resolved == root.resolve() or root.resolve() in resolved.parents


@pytest.mark.parametrize("path", ["..", "../ws-evil", "src/../../x", "/etc/passwd", "src/pkg/../../../ws2"])
def test_paths_that_escape_are_refused(root: Path, path: str) -> None:
    with pytest.raises(PathOutsideWorkspace, match=f"path {path!r} is outside"):
        resolve_inside(root, path)


def test_an_absolute_path_inside_the_root_is_allowed(root: Path) -> None:
    inside = root.resolve() / "src" / "pkg"
    assert resolve_inside(root, str(inside)) == inside


def test_a_link_pointing_out_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("no")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(PathOutsideWorkspace):
        resolve_inside(root, "link")


def test_a_link_pointing_in_is_allowed(root: Path) -> None:
    (root / "alias").symlink_to(root / "src" / "pkg")
    assert resolve_inside(root, "alias/mod.py") == (root / "src" / "pkg" / "mod.py").resolve()


def test_workspace_path_checks_existence_on_request(layers: Layers) -> None:
    (layers.workspace / "here.txt").write_text("ok")
    assert layers.workspace_path("here.txt").read_text() == "ok"
    with pytest.raises(ToolError, match=r"'absent\.txt' does not exist in the workspace"):
        layers.workspace_path("absent.txt")
    assert layers.workspace_path("absent.txt", must_exist=False).name == "absent.txt"
    with pytest.raises(PathOutsideWorkspace):
        layers.workspace_path("../knowledge")


def test_read_structured_parses_json_and_yaml(layers: Layers) -> None:
    (layers.knowledge / "rules.yaml").write_text("rules:\n  - a\n  - b\n")
    (layers.context / "team.json").write_text('{"lead": "ana"}')
    assert layers.read_structured("knowledge", "rules.yaml") == {"rules": ["a", "b"]}
    assert layers.read_structured("context", "team.json") == {"lead": "ana"}
    assert layers.read_structured("context", "absent.yaml", default={"d": 1}) == {"d": 1}


def test_read_structured_reports_bad_files(layers: Layers) -> None:
    (layers.knowledge / "bad.json").write_text("{not json")
    (layers.knowledge / "bad.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ToolError, match=r"knowledge file bad\.json is not valid json"):
        layers.read_structured("knowledge", "bad.json")
    with pytest.raises(ToolError, match=r"knowledge file bad\.yaml is not valid yaml"):
        layers.read_structured("knowledge", "bad.yaml")
    (layers.context / "huge.yaml").write_text("x" * (MAX_LAYER_FILE_BYTES + 1))
    with pytest.raises(ToolError, match=f"larger than {MAX_LAYER_FILE_BYTES} bytes"):
        layers.read_structured("context", "huge.yaml")
    with pytest.raises(PathOutsideWorkspace):
        layers.read_structured("context", "../knowledge/bad.json")


def test_files_lists_regular_files_without_hidden_ones(layers: Layers) -> None:
    (layers.context / "project").mkdir()
    (layers.context / "project" / "b.md").write_text("b")
    (layers.context / "a.yaml").write_text("a: 1")
    (layers.context / ".hidden").write_text("h")
    assert [p.relative_to(layers.context).as_posix() for p in layers.files("context")] == ["a.yaml", "project/b.md"]
    layers.knowledge.rmdir()
    assert layers.files("knowledge") == []
