"""lint_python and format_python: real ruff runs on files with known problems, under the team standards."""

from __future__ import annotations

import json

import pytest

from agents.code.standards import load_standards

pytestmark = pytest.mark.anyio

# line 4 is 130 characters (over the team's 120); line 5 is 110 (under it, though over ruff's default 88)
LONG = "x" * 120
MEDIUM = "y" * 100
VIOLATIONS = f'''\
import os
import sys

LONG_NAME = "{LONG}"
MEDIUM_NAME = "{MEDIUM}"


def check(value):
    if value == None:
        return sys.argv
    return value
'''

UNFORMATTED = "def f( a,b ):\n    return {'a':a,'b':b}\n"
FORMATTED = "def g(a, b):\n    return a + b\n"


@pytest.fixture
async def code_agent(agent_client):
    client, runtime = await agent_client("code")
    src = runtime.layers.workspace / "src"
    src.mkdir()
    (src / "bad.py").write_text(VIOLATIONS)
    (src / "messy.py").write_text(UNFORMATTED)
    (src / "tidy.py").write_text(FORMATTED)
    return client, runtime


async def test_lint_reports_known_violations_with_team_line_length(code_agent):
    client, runtime = code_agent
    result = await client.call_tool("lint_python", {"path": "src/bad.py"})
    assert not result.is_error, result.content
    out = result.structured_content
    found = {(f["code"], f["line"]) for f in out["findings"]}
    assert found == {("F401", 1), ("E501", 4), ("E711", 9)}
    unused = next(f for f in out["findings"] if f["code"] == "F401")
    assert unused == {
        "code": "F401",
        "message": "`os` imported but unused",
        "file": "src/bad.py",
        "line": 1,
        "col": 8,
        "end_line": 1,
        "end_col": 10,
        "fixable": True,
        "fix_applicability": "safe",
        "url": "https://docs.astral.sh/ruff/rules/unused-import",
    }
    assert out["settings"]["line_length"] == load_standards(runtime).python.line_length == 120
    assert out["summary"].startswith("3 finding(s) in 1 file(s) under src/bad.py")
    assert out["fixable"] == 2  # F401 (safe) and E711 (unsafe fix); E501 has none


async def test_lint_fix_rewrites_safe_fixes(code_agent):
    client, runtime = code_agent
    result = await client.call_tool("lint_python", {"path": "src", "fix": True})
    assert not result.is_error, result.content
    codes = {f["code"] for f in result.structured_content["findings"]}
    assert "F401" not in codes and {"E501", "E711"} <= codes
    assert not (runtime.layers.workspace / "src" / "bad.py").read_text().startswith("import os")


async def test_lint_clean_file_and_syntax_error(code_agent):
    client, runtime = code_agent
    clean = await client.call_tool("lint_python", {"path": "src/tidy.py"})
    assert clean.structured_content["findings"] == []
    assert clean.structured_content["summary"] == "ruff: no findings in src/tidy.py"
    (runtime.layers.workspace / "src" / "broken.py").write_text("def (:\n")
    broken = await client.call_tool("lint_python", {"path": "src/broken.py"})
    assert not broken.is_error
    assert {f["code"] for f in broken.structured_content["findings"]} == {"invalid-syntax"}


async def test_lint_bad_paths(code_agent):
    client, _ = code_agent
    for path, message in (("missing.py", "does not exist"), ("../x.py", "outside")):
        result = await client.call_tool("lint_python", {"path": path})
        assert result.is_error and message in result.content[0].text


async def test_format_check_only_lists_files_and_changes_nothing(code_agent):
    client, runtime = code_agent
    result = await client.call_tool("format_python", {"path": "src", "show_diff": True})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["files"] == ["src/messy.py"] and out["check_only"]
    assert "+def f(a, b):" in out["diff"]
    assert (runtime.layers.workspace / "src" / "messy.py").read_text() == UNFORMATTED


async def test_format_rewrites_and_reports_unparsable_files(code_agent):
    client, runtime = code_agent
    ws = runtime.layers.workspace / "src"
    (ws / "broken.py").write_text("def (:\n")
    result = await client.call_tool("format_python", {"path": "src", "check_only": False})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["files"] == ["src/messy.py"]
    assert [e["file"] for e in out["errors"]] == ["src/broken.py"]
    assert (ws / "messy.py").read_text() == 'def f(a, b):\n    return {"a": a, "b": b}\n'
    assert (ws / "broken.py").read_text() == "def (:\n"
    again = await client.call_tool("format_python", {"path": "src/messy.py"})
    assert again.structured_content["files"] == [] and "already formatted" in again.structured_content["summary"]


async def test_standards_file_decides_line_length(code_agent, agent_client, tmp_path):
    """A context whose standards say 100 makes the 110-character line a finding too."""
    context = tmp_path / "ctx"
    (context / "team").mkdir(parents=True)
    (context / "team" / "standards.json").write_text(json.dumps({"python": {"line_length": 100}}))
    _, first_runtime = code_agent
    client, runtime = await agent_client("code", context_dir=context)
    assert runtime.layers.workspace == first_runtime.layers.workspace  # same tmp workspace
    result = await client.call_tool("lint_python", {"path": "src/bad.py"})
    lines = sorted(f["line"] for f in result.structured_content["findings"] if f["code"] == "E501")
    assert lines == [4, 5]


@pytest.mark.anyio
async def test_output_over_the_sandbox_cap_is_counted_not_an_error(agent_client):
    client, runtime = await agent_client("code", command_output_limit=4096)
    source = "".join(f"import module_{i}\n" for i in range(300))  # 300 unused imports, ~500 bytes of JSON each
    (runtime.layers.workspace / "many.py").write_text(source)
    result = await client.call_tool("lint_python", {"path": "many.py"})
    assert not result.is_error, result.content[0].text
    report = result.structured_content
    assert report["truncated"] and report["total_findings"] == 300
    assert 0 < len(report["findings"]) < 300 and report["counts_by_code"]["F401"] == 300
    assert "listed: the output cap was reached" in report["summary"]
