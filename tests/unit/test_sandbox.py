"""The sandboxed command runner with real processes: no shell, timeouts that kill the whole process group,
an output cap, cwd confined to the workspace, and an environment scrubbed of secrets."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from agents.runtime.errors import CommandFailed, PathOutsideWorkspace
from agents.runtime.sandbox import Sandbox, scrubbed_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    (root / "sub").mkdir(parents=True)
    return root


@pytest.fixture
def sandbox(workspace: Path) -> Sandbox:
    return Sandbox(workspace, timeout_s=10.0, output_limit=4096)


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_arguments_are_passed_literally_without_a_shell(sandbox: Sandbox, workspace: Path) -> None:
    result = await sandbox.run(["echo", "hello; touch pwned", "$HOME", "`id`", "a|b"])
    assert result.exit_code == 0
    assert result.stdout == "hello; touch pwned $HOME `id` a|b\n"
    assert not (workspace / "pwned").exists()
    assert result.argv == ["echo", "hello; touch pwned", "$HOME", "`id`", "a|b"]
    assert result.truncated is False and result.duration_s >= 0


async def test_a_non_zero_exit_is_a_result_not_an_error(sandbox: Sandbox) -> None:
    result = await sandbox.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")


async def test_stdin_reaches_the_command(sandbox: Sandbox) -> None:
    result = await sandbox.run(["cat"], stdin=b"from stdin")
    assert result.stdout == "from stdin"


async def test_cwd_is_relative_to_the_workspace(sandbox: Sandbox, workspace: Path) -> None:
    result = await sandbox.run(["pwd"], cwd="sub")
    assert result.stdout.strip() == str((workspace / "sub").resolve())


async def test_timeout_kills_the_process_group_including_children(sandbox: Sandbox, workspace: Path) -> None:
    started = time.monotonic()
    with pytest.raises(CommandFailed, match=r"sh did not finish within 0.5 s and was killed"):
        await sandbox.run(["sh", "-c", "sleep 30 & echo $! > child.pid; wait"], timeout_s=0.5)
    assert time.monotonic() - started < 5
    child = int((workspace / "child.pid").read_text())
    for _ in range(60):  # up to 3 s for the reaper
        if gone(child):
            break
        await asyncio.sleep(0.05)
    assert gone(child), f"background child {child} survived the timeout"


async def test_output_beyond_the_cap_is_cut_and_flagged(workspace: Path) -> None:
    small = Sandbox(workspace, output_limit=1000)
    result = await small.run(["seq", "1", "20000"])
    assert result.truncated is True
    assert len(result.stdout) == 1000
    assert result.stdout.startswith("1\n2\n3\n")
    assert result.exit_code == 0
    assert (await small.run(["seq", "1", "10"])).truncated is False


@pytest.mark.parametrize("cwd", ["..", "../..", "/etc", "sub/../../elsewhere"])
async def test_cwd_outside_the_workspace_is_refused(sandbox: Sandbox, cwd: str) -> None:
    with pytest.raises(PathOutsideWorkspace, match="is outside"):
        await sandbox.run(["ls"], cwd=cwd)


async def test_a_link_out_of_the_workspace_is_refused_as_cwd(sandbox: Sandbox, workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (workspace / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(PathOutsideWorkspace):
        await sandbox.run(["ls"], cwd="escape")


async def test_a_missing_cwd_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(CommandFailed, match="working directory 'nope' does not exist in the workspace"):
        await sandbox.run(["ls"], cwd="nope")


async def test_a_missing_command_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(CommandFailed, match="command not found: no-such-binary-here"):
        await sandbox.run(["no-such-binary-here", "x"])


@pytest.mark.parametrize("argv", [[], [""], ["echo", ""]])
async def test_argv_must_be_non_empty_strings(sandbox: Sandbox, argv: list[str]) -> None:
    with pytest.raises(CommandFailed, match="non-empty list of non-empty strings"):
        await sandbox.run(argv)


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "api_key", "DB_PASSWORD", "CLIENT_SECRET", "AWS_CREDENTIALS"])
async def test_secret_looking_variables_are_refused(sandbox: Sandbox, name: str) -> None:
    with pytest.raises(CommandFailed, match=f"refusing to pass secret-looking variable '{name}'"):
        await sandbox.run(["true"], env={name: "value"})


@pytest.mark.parametrize("name", ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"])
def test_ordinary_variables_that_merely_contain_a_secret_word_are_allowed(name: str) -> None:
    # git needs GIT_AUTHOR_NAME/EMAIL to commit in a fresh container; they are not secrets
    assert scrubbed_env({name: "Reynolds"})[name] == "Reynolds"


async def test_the_environment_is_scrubbed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REYNOLDS_AGENT_TOKEN", "leak-me-if-you-can")
    monkeypatch.setenv("UNRELATED_SETTING", "also-not-inherited")
    monkeypatch.setenv("LANG", "C.UTF-8")
    result = await sandbox.run(["env"], env={"MY_FLAG": "on"})
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert "leak-me-if-you-can" not in result.stdout
    assert "UNRELATED_SETTING" not in seen
    assert seen["MY_FLAG"] == "on"
    assert seen["LANG"] == "C.UTF-8"
    assert "PATH" in seen
