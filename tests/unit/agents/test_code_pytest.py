"""run_pytest: real pytest runs in the agent's workspace, read back from their JUnit reports."""

from __future__ import annotations

import time

import pytest

from agents.code.pytest_runner import parse_junit

pytestmark = pytest.mark.anyio

MIXED = """\
import pytest


@pytest.fixture
def broken_fixture():
    raise RuntimeError("fixture exploded")


def test_adds():
    assert 1 + 1 == 2


def test_compares():
    assert [1, 2] == [1, 3], "lists differ"


def test_uses_fixture(broken_fixture):
    pass


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""

SLOW = """\
import time


def test_sleeps():
    time.sleep(30)
"""


@pytest.fixture
async def code_agent(agent_client):
    client, runtime = await agent_client("code")
    ws = runtime.layers.workspace
    (ws / "proj" / "tests").mkdir(parents=True)
    (ws / "proj" / "tests" / "test_mixed.py").write_text(MIXED)
    (ws / "slow").mkdir()
    (ws / "slow" / "test_slow.py").write_text(SLOW)
    (ws / "empty").mkdir()
    (ws / "empty" / "module.py").write_text("x = 1\n")
    return client, runtime


async def test_counts_and_per_test_outcomes(code_agent):
    client, runtime = code_agent
    result = await client.call_tool("run_pytest", {"path": "proj"})
    assert not result.is_error, result.content
    out = result.structured_content
    assert (out["passed"], out["failed"], out["errors"], out["skipped"], out["total"]) == (1, 1, 1, 1, 4)
    assert out["exit_code"] == 1 and out["exit_meaning"] == "some tests failed"
    tests = {t["name"]: t for t in out["tests"]}
    assert tests["tests.test_mixed::test_adds"]["outcome"] == "passed"
    failed = tests["tests.test_mixed::test_compares"]
    assert failed["outcome"] == "failed" and "lists differ" in failed["message"]
    assert "assert [1, 2] == [1, 3]" in failed["details"]
    errored = tests["tests.test_mixed::test_uses_fixture"]
    assert errored["outcome"] == "error" and "fixture exploded" in errored["details"]
    assert tests["tests.test_mixed::test_skipped"]["message"] == "not today"
    assert "failing: tests.test_mixed::test_compares, tests.test_mixed::test_uses_fixture" in out["summary"]
    assert (runtime.layers.workspace / out["report_file"]).is_file()
    assert not (runtime.layers.workspace / "proj" / ".pytest_cache").exists()


async def test_single_file_with_args(code_agent):
    client, _ = code_agent
    result = await client.call_tool("run_pytest", {"path": "proj/tests/test_mixed.py", "args": ["-k", "adds"]})
    assert not result.is_error, result.content
    out = result.structured_content
    assert (out["passed"], out["failed"], out["total"]) == (1, 0, 1) and out["exit_code"] == 0


async def test_timeout_kills_the_run_with_a_clear_error(code_agent):
    client, _ = code_agent
    started = time.monotonic()
    result = await client.call_tool("run_pytest", {"path": "slow", "timeout_s": 2})
    assert result.is_error
    assert result.content[0].text.endswith("pytest in slow timed out after 2 s and was stopped")
    assert time.monotonic() - started < 15


async def test_directory_without_tests(code_agent):
    client, _ = code_agent
    result = await client.call_tool("run_pytest", {"path": "empty"})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["no_tests_collected"] and out["exit_code"] == 5 and out["total"] == 0
    assert out["summary"] == "no tests collected in empty"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "missing"}, "does not exist"),
        ({"path": "../.."}, "outside"),
        ({"path": "proj", "args": ["--junitxml=out.xml"]}, "not allowed"),
        ({"path": "proj", "args": ["--ignore=/etc"]}, "outside the workspace"),
        ({"path": "proj", "args": ["--junit-xml", "out.xml"]}, "not allowed"),
        ({"path": "proj", "args": ["-p", "evil_plugin"]}, "not allowed"),
        ({"path": "proj", "args": ["-xpevil_plugin"]}, "not allowed"),
        ({"path": "proj", "args": ["-o", "addopts=-p evil"]}, "not allowed"),
        ({"path": "proj", "args": ["--override-ini=addopts=-p evil"]}, "not allowed"),
        ({"path": "proj", "args": ["-vc", "other.ini"]}, "not allowed"),
        ({"path": "proj", "args": ["--config-file=other.ini"]}, "not allowed"),
        ({"path": "proj", "args": ["../../elsewhere"]}, "outside the workspace"),
        ({"path": "proj", "timeout_s": 3000}, "max_timeout_s"),
        ({"path": "proj", "args": ["--no-such-option"]}, "pytest could not run in proj (exit 4)"),
    ],
)
async def test_bad_input(code_agent, arguments, message):
    client, _ = code_agent
    result = await client.call_tool("run_pytest", arguments)
    assert result.is_error
    assert message in result.content[0].text


def test_parse_junit_rejects_a_broken_report():
    from agents.runtime.errors import ToolError

    with pytest.raises(ToolError, match="not valid XML"):
        parse_junit("<testsuites><testsuite>")
