"""The pools file: extra MCP servers by URL, several URLs or stdio command, and the errors a bad (or hostile)
file gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reynolds import errors
from reynolds.pools import MAX_ERROR_CHARS, MAX_FILE_BYTES, load_pools


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
def test_exactly_one_of_url_urls_or_command(tmp_path: Path, entry: str) -> None:
    path = pools_file(tmp_path, "pools:\n" + entry)
    with pytest.raises(
        errors.InvalidRequest, match=rf"(?s){re.escape(str(path))}:.*give exactly one of 'url', 'urls' or 'command'"
    ):
        load_pools(path)


def test_urls_are_the_replicas_of_one_pool_and_url_is_one_of_them(tmp_path: Path) -> None:
    path = pools_file(
        tmp_path,
        """
pools:
  - name: search
    urls: [http://s1:8000/mcp, https://s2.example/mcp]
    health_url: /healthz
  - name: single
    url: http://one:9000/mcp
""",
    )
    search, single = load_pools(path)
    assert search.replica_urls == ["http://s1:8000/mcp", "https://s2.example/mcp"]
    assert [search.health_for(u) for u in search.replica_urls] == [
        "http://s1:8000/healthz",
        "https://s2.example/healthz",
    ]
    assert single.replica_urls == ["http://one:9000/mcp"] and single.health_for(single.url or "") is None


def test_an_absolute_health_url_serves_a_single_url_pool_only(tmp_path: Path) -> None:
    one = pools_file(tmp_path, "pools:\n  - name: a\n    url: http://a/mcp\n    health_url: http://a:81/up\n")
    assert load_pools(one)[0].health_for("http://a/mcp") == "http://a:81/up"
    two = pools_file(
        tmp_path, "pools:\n  - name: a\n    urls: [http://a/mcp, http://b/mcp]\n    health_url: http://a:81/up\n"
    )
    with pytest.raises(errors.InvalidRequest, match="give 'health_url' as a path"):
        load_pools(two)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("    url: http://x/mcp\n    replicas: 2\n", "'replicas' applies to stdio pools"),
        ("    urls: [http://x/mcp, http://x/mcp]\n", "each URL may appear once"),
        ("    urls: []\n", "at least 1"),
        ("    urls: [" + ", ".join(f"http://h{i}/mcp" for i in range(33)) + "]\n", "at most 32"),
        ("    url: file:///etc/passwd\n", "not an http"),
        ("    urls: [http://ok/mcp, 'javascript:alert(1)']\n", "not an http"),
        ("    url: http:///mcp\n", "not an http"),
        ("    url: http://x:99999/mcp\n", "out of range"),
        ("    command: [srv]\n    health_url: /health\n", "'health_url' applies to URL pools"),
        ("    url: http://x/mcp\n    health_url: 'ftp://x/h'\n", "not an http"),
    ],
)
def test_url_entries_are_checked(tmp_path: Path, entry: str, why: str) -> None:
    path = pools_file(tmp_path, "pools:\n  - name: web\n" + entry)
    with pytest.raises(errors.InvalidRequest, match=re.escape(why)):
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


def test_an_unreadable_token_file_is_an_error_of_the_pools_file(tmp_path: Path) -> None:
    path = pools_file(tmp_path, f"pools:\n  - name: a\n    url: http://a/mcp\n    token_file: {tmp_path / 'nope'}\n")
    with pytest.raises(errors.InvalidRequest, match=f"pools file {re.escape(str(path))}:.*nope"):
        load_pools(path)


def test_junk_gives_a_bounded_error_and_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    junk = pools_file(tmp_path, "pools:\n" + "".join(f"  - name: '{i} bad'\n    colour: {i}\n" for i in range(2000)))
    with pytest.raises(errors.InvalidRequest) as caught:
        load_pools(junk)
    assert len(str(caught.value)) < MAX_ERROR_CHARS + len(str(junk)) + 50
    huge = pools_file(tmp_path, "# " + "x" * (MAX_FILE_BYTES + 10))
    with pytest.raises(errors.InvalidRequest, match="larger than"):
        load_pools(huge)


def test_binary_junk_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_bytes(b"\x00\xff\xfe pools: [")
    with pytest.raises(errors.InvalidRequest, match=f"pools file {re.escape(str(path))}:"):
        load_pools(path)
