"""generate_code, refactor_code and review_code against a local OpenAI-compatible API double, reached
by the real ``openai`` client through OPENAI_BASE_URL; and their behaviour with no key configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.openai_api import OpenAIDouble

pytestmark = pytest.mark.anyio

KEY = "sk-double-0123456789"

ORDERS = '''\
"""Order helpers."""


def total(prices: list[float]) -> float:
    """Sum of prices."""
    return sum(prices)


def helper(values):
    if values:
        return total(values)
    return 0.0  # TODO: raise instead of returning zero
'''


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OpenAIDouble]:
    """The double running on 127.0.0.1, with the agent's settings pointed at it (key from a file)."""
    key_file = tmp_path / "openai-key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)  # the sandbox refuses to run anything while a secret file is readable by others
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAIDouble(KEY) as double:
        monkeypatch.setenv("OPENAI_API_KEY_FILE", str(key_file))
        monkeypatch.setenv("OPENAI_BASE_URL", double.base_url)
        monkeypatch.setenv("OPENAI_MODEL", "double-coder")
        monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")  # a 500 should surface at once, not after backoff
        yield double


@pytest.fixture
def no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_API_KEY_FILE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def code_agent(agent_client):
    client, runtime = await agent_client("code")
    (runtime.layers.workspace / "app").mkdir()
    (runtime.layers.workspace / "app" / "orders.py").write_text(ORDERS)
    return client, runtime


async def test_generate_code_sends_standards_and_context_and_writes_output(api, code_agent):
    client, runtime = code_agent
    result = await client.call_tool(
        "generate_code",
        {
            "instruction": "Parse ISO dates from a CSV column",
            "context_paths": ["app/orders.py"],
            "output_path": "app/dates.py",
        },
    )
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["model"] == "double-coder" and out["had_code_block"] and out["syntax_ok"]
    assert out["written_to"] == "app/dates.py"
    assert (runtime.layers.workspace / "app" / "dates.py").read_text() == out["code"]

    request = api.requests[-1]
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "double-coder"
    system, user = body["messages"]
    assert system["role"] == "system" and "at most 120 characters" in system["content"]
    assert "complexity at most 10" in system["content"]
    assert user["role"] == "user" and user["content"].startswith("Write python code for this request:")
    assert "Existing file app/orders.py" in user["content"] and "def helper(values):" in user["content"]


async def test_generate_code_refuses_to_overwrite_without_flag(api, code_agent):
    client, _ = code_agent
    result = await client.call_tool("generate_code", {"instruction": "anything", "output_path": "app/orders.py"})
    assert result.is_error and "already exists; pass overwrite=true" in result.content[0].text


async def test_refactor_returns_diff_and_only_writes_with_apply(api, code_agent):
    client, runtime = code_agent
    path = runtime.layers.workspace / "app" / "orders.py"
    args = {"path": "app/orders.py", "instruction": "rename helper to safe_total"}
    proposal = await client.call_tool("refactor_code", args)
    assert not proposal.is_error, proposal.content
    out = proposal.structured_content
    assert out["changed"] and not out["applied"] and out["syntax_ok"]
    assert "-def helper(values):\n+def safe_total(values):\n" in out["diff"]
    assert out["diff"].startswith("--- a/app/orders.py\n+++ b/app/orders.py\n")
    assert (out["lines_added"], out["lines_removed"]) == (1, 1)
    assert path.read_text() == ORDERS  # nothing written without apply

    applied = await client.call_tool("refactor_code", {**args, "apply": True})
    assert applied.structured_content["applied"]
    assert path.read_text() == ORDERS.replace("def helper(", "def safe_total(")


async def test_refactor_never_applies_python_that_does_not_parse(api, code_agent):
    client, runtime = code_agent
    api.reply_text = "```python\ndef broken(:\n```"
    result = await client.call_tool("refactor_code", {"path": "app/orders.py", "instruction": "tidy up", "apply": True})
    assert result.is_error and "does not parse (line 1" in result.content[0].text
    assert (runtime.layers.workspace / "app" / "orders.py").read_text() == ORDERS


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("wrong_key", "rejected the API key (HTTP 401): Incorrect API key provided."),
        ("server_error", "answered HTTP 500: the double was told to fail"),
        ("malformed", "returned a malformed completion: no choices"),
        ("empty_reply", "malformed completion: the first choice has no text content"),
    ],
)
async def test_llm_failures_are_clear_errors(api, code_agent, monkeypatch, setup, message):
    client, _ = code_agent
    if setup == "wrong_key":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    elif setup == "server_error":
        api.fail_status = 500
    elif setup == "malformed":
        api.malformed = True
    else:
        api.reply_text = ""
    result = await client.call_tool("refactor_code", {"path": "app/orders.py", "instruction": "tidy up"})
    assert result.is_error
    assert message in result.content[0].text
    assert api.base_url in result.content[0].text


async def test_unreachable_llm_is_a_clear_error(code_agent, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # discard port: nothing listens
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
    client, _ = code_agent
    result = await client.call_tool("generate_code", {"instruction": "hello world"})
    assert result.is_error and "cannot reach the LLM at http://127.0.0.1:9/v1" in result.content[0].text


async def test_without_a_key_generation_is_not_configured(no_llm, code_agent):
    client, _ = code_agent
    for tool, args in (
        ("generate_code", {"instruction": "hello world"}),
        ("refactor_code", {"path": "app/orders.py", "instruction": "tidy"}),
        ("review_code", {"path": "app", "use_llm": True}),
    ):
        result = await client.call_tool(tool, args)
        assert result.is_error
        assert "LLM not configured: set OPENAI_API_KEY_FILE" in result.content[0].text


async def test_review_without_llm_gives_local_findings(no_llm, code_agent):
    client, _ = code_agent
    result = await client.call_tool("review_code", {"path": "app"})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["verdict"] == "approve_with_comments" and out["blocking"] == []
    kinds = sorted((w["kind"], w["line"]) for w in out["warnings"])
    assert kinds == [("missing_docstring", 9), ("todo", 12)]
    assert out["llm_review"] is None and out["llm_note"].startswith("LLM not configured")


async def test_review_with_llm_sends_checklist_findings_and_code(api, code_agent):
    client, runtime = code_agent
    (runtime.layers.workspace / "app" / "extra.py").write_text('"""Extra."""\nimport os\n')
    result = await client.call_tool("review_code", {"path": "app"})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["verdict"] == "changes_requested"
    assert [b["message"] for b in out["blocking"]] == ["F401 `os` imported but unused"]
    assert out["llm_model"] == "double-coder" and "import os" in out["llm_review"]
    system, user = api.requests[-1]["body"]["messages"]
    assert "Review checklist" in system["content"]
    assert "[blocking] app/extra.py:2 lint: F401" in user["content"]
    assert "File app/orders.py:" in user["content"]


async def test_review_with_use_llm_false_makes_no_request(api, code_agent):
    client, _ = code_agent
    result = await client.call_tool("review_code", {"path": "app/orders.py", "use_llm": False})
    assert not result.is_error and result.structured_content["llm_note"] == "LLM not requested (use_llm=false)"
    assert api.requests == []


async def test_review_keeps_local_findings_when_the_llm_fails(api, code_agent):
    client, _ = code_agent
    api.fail_status = 500
    auto = await client.call_tool("review_code", {"path": "app"})
    assert not auto.is_error, auto.content
    out = auto.structured_content
    assert out["verdict"] == "approve_with_comments" and len(out["warnings"]) == 2
    assert out["llm_review"] is None and "LLM review failed" in out["llm_note"] and "HTTP 500" in out["llm_note"]
    required = await client.call_tool("review_code", {"path": "app", "use_llm": True})
    assert required.is_error and "answered HTTP 500" in required.content[0].text


async def test_a_review_reports_one_complexity_figure_per_function(no_llm, code_agent):
    client, runtime = code_agent
    branches = "".join(f"    if x == {i} and y:\n        return {i}\n" for i in range(12))
    (runtime.layers.workspace / "app" / "branchy.py").write_text(
        f'"""Many branches."""\n\n\ndef pick(x, y):\n    """Pick."""\n{branches}    return -1\n'
    )
    out = (await client.call_tool("review_code", {"path": "app/branchy.py"})).structured_content
    about_pick = [i for i in out["blocking"] if i["line"] == 4]
    assert [i["kind"] for i in about_pick] == ["complexity"], about_pick  # not also ruff's C901 count
