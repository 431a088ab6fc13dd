"""The pools file: extra MCP servers by URL or stdio command, and the errors a bad file gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reynolds import errors
from reynolds.pools import load_pools


def pools_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pools.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_gives_its_pools(tmp_path: Path) -> None:
    token = tmp_path / "search-token"
    token.write_text("  search-secret\n")
    path = pools_file(
        tmp_path,
        f"""
pools:
  - name: files
    command: ["python", "-m", "my_server", "--root", "/data"]
    env: {{ROOT: /data}}
    replicas: 2
  - name: search
    url: http://search:8000/mcp
    token_file: {token}
    max_concurrency: 3
""",
    )
    files, search = load_pools(path)
    assert (files.name, files.command, files.env, files.replicas, files.url) == (
        "files",
        ["python", "-m", "my_server", "--root", "/data"],
        {"ROOT": "/data"},
        2,
        None,
    )
    assert (search.url, search.max_concurrency, search.token) == ("http://search:8000/mcp", 3, "search-secret")
    assert files.token is None


def test_no_file_and_an_empty_file_give_no_pools(tmp_path: Path) -> None:
    assert load_pools(None) == []
    assert load_pools(pools_file(tmp_path, "")) == []


@pytest.mark.parametrize(
    "entry",
    [
        "  - name: both\n    url: http://x/mcp\n    command: [srv]\n",
        "  - name: neither\n    max_concurrency: 2\n",
    ],
)
def test_exactly_one_of_url_or_command(tmp_path: Path, entry: str) -> None:
    path = pools_file(tmp_path, "pools:\n" + entry)
    with pytest.raises(
        errors.InvalidRequest, match=rf"(?s){re.escape(str(path))}:.*give exactly one of 'url' or 'command'"
    ):
        load_pools(path)


def test_replicas_apply_to_stdio_pools_only(tmp_path: Path) -> None:
    path = pools_file(tmp_path, "pools:\n  - name: web\n    url: http://x/mcp\n    replicas: 2\n")
    with pytest.raises(errors.InvalidRequest, match="'replicas' applies to stdio pools"):
        load_pools(path)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = pools_file(tmp_path, "pools:\n  - name: same\n    url: http://a/mcp\n  - name: same\n    command: [srv]\n")
    with pytest.raises(errors.InvalidRequest, match=f"pools file {re.escape(str(path))}: pool names must be unique"):
        load_pools(path)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = pools_file(tmp_path, "pools: [\n  - name: broken\n")
    with pytest.raises(errors.InvalidRequest, match=f"pools file {re.escape(str(path))}:"):
        load_pools(path)


@pytest.mark.parametrize(
    "text",
    [
        "pools:\n  - name: Bad Name\n    url: http://x/mcp\n",
        "pools:\n  - name: ok\n    url: http://x/mcp\n    colour: blue\n",
        "servers: []\n",
        "pools:\n  - name: ok\n    command: []\n",
    ],
)
def test_invalid_entries_name_the_file(tmp_path: Path, text: str) -> None:
    path = pools_file(tmp_path, text)
    with pytest.raises(errors.InvalidRequest, match=f"pools file {re.escape(str(path))}:"):
        load_pools(path)


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(errors.InvalidRequest, match=f"pools file {re.escape(str(path))}:"):
        load_pools(path)
