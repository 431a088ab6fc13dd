"""The sandboxed command runner with real processes: no shell, a per-call sandbox uid, rlimits, no
network by default, nothing left running after the call, an output cap, cwd confined to the workspace,
and an environment scrubbed of secrets."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import anyio
import pytest

from agents.runtime import workspace as workspace_module
from agents.runtime.errors import CommandFailed, PathOutsideWorkspace
from agents.runtime.sandbox import Sandbox, can_unshare_net, scrubbed_env, unsearchable_parent
from agents.runtime.settings import SandboxSettings
from agents.runtime.workspace import share_tree

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
    assert gone(child), f"background child {child} survived the timeout"


async def test_commands_run_as_a_sandbox_uid_not_the_agent(sandbox: Sandbox) -> None:
    s = sandbox.settings
    uid, gid, groups = (await sandbox.run(["sh", "-c", "id -u; id -g; id -G"])).stdout.split("\n")[:3]
    assert s.uid_base <= int(uid) < s.uid_base + s.uids and int(uid) != os.geteuid()
    assert int(gid) == s.gid and groups == str(s.gid)
    denied = await sandbox.run(["cat", f"/proc/{os.getpid()}/environ"])
    assert denied.exit_code != 0 and "Permission denied" in denied.stderr


async def test_a_setsid_double_forked_child_is_gone_when_the_call_returns(sandbox: Sandbox, workspace: Path) -> None:
    result = await sandbox.run(["sh", "-c", "setsid sh -c 'sleep 300 & echo $! > child.pid' & wait; echo started"])
    assert result.stdout == "started\n"
    child = int((workspace / "child.pid").read_text())
    assert gone(child), f"detached child {child} survived the call"


async def test_a_cancelled_call_leaves_nothing_running(sandbox: Sandbox, workspace: Path) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(sandbox.run, ["sh", "-c", "setsid sleep 300 & echo $! > child.pid; wait"])
        await wait_for_file(workspace / "child.pid")
        tg.cancel_scope.cancel()
    assert gone(int((workspace / "child.pid").read_text()))


async def wait_for_file(path: Path) -> None:
    """Until the command has written ``path`` (a wait-until on observable state, no fixed sleep)."""
    while True:
        if await anyio.Path(path).exists() and (await anyio.Path(path).read_text()).strip():
            return
        await anyio.sleep(0.01)


async def test_rlimits_apply(sandbox: Sandbox) -> None:
    s = sandbox.settings
    rows = (await sandbox.run(["cat", "/proc/self/limits"])).stdout.splitlines()
    soft = {row[:26].strip(): row[26:].split()[0] for row in rows[1:]}
    mib = 1024 * 1024
    assert soft["Max open files"] == str(s.open_files) and soft["Max processes"] == str(s.processes)
    assert soft["Max file size"] == str(s.file_size_mb * mib) and soft["Max cpu time"] == str(s.cpu_s)
    assert soft["Max address space"] == str(s.memory_mb * mib) and soft["Max core file size"] == "0"


async def test_home_is_private_to_the_call_and_emptied_after_it(sandbox: Sandbox, tmp_path: Path) -> None:
    left = f"/tmp/left-by-{tmp_path.name}"
    home = anyio.Path(
        (await sandbox.run(["sh", "-c", f"echo kept > $HOME/note; touch {left}; echo $HOME"])).stdout.strip()
    )
    assert home.parent == sandbox.settings.home_root and (await home.stat()).st_mode & 0o777 == 0o700
    assert [p async for p in home.iterdir()] == []
    assert not await anyio.Path(left).exists()


async def test_a_fork_bomb_is_capped_and_killed_with_everything_it_made(workspace: Path) -> None:
    small = Sandbox(workspace, settings=SandboxSettings(processes=16))
    bomb = "while true; do sleep 300 & echo $! >> pids; done"
    result = await small.run(["sh", "-c", bomb])
    assert result.exit_code != 0 and "fork" in result.stderr.lower()  # RLIMIT_NPROC stopped it
    pids = [int(p) for p in (workspace / "pids").read_text().split()]
    assert 0 < len(pids) < 16 and all(gone(p) for p in pids)


@pytest.mark.skipif(not can_unshare_net(), reason="this host gives no network namespace (see README Security)")
async def test_no_network_unless_the_call_asks(sandbox: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}))"]
        offline = await sandbox.run(connect)
        assert offline.exit_code != 0 and "unreachable" in offline.stderr
        assert (await sandbox.run(connect, network=True)).exit_code == 0


async def test_without_uid_separation_it_refuses_and_names_the_setting(workspace: Path) -> None:
    cannot = Sandbox(workspace, settings=SandboxSettings(setpriv="false"))
    with pytest.raises(CommandFailed, match="SANDBOX_ALLOW_UNSANDBOXED=true"):
        await cannot.run(["true"])
    allowed = Sandbox(workspace, settings=SandboxSettings(setpriv="false", allow_unsandboxed=True))
    assert (await allowed.run(["id", "-u"])).stdout.strip() == str(os.geteuid())


def test_the_first_parent_others_cannot_search_is_named(tmp_path: Path) -> None:
    deep = tmp_path / "home" / "user" / "ws" / "task"
    deep.mkdir(parents=True)
    assert unsearchable_parent(deep, gid=20000) is None
    (tmp_path / "home" / "user").chmod(0o700)
    assert unsearchable_parent(deep, gid=20000) == tmp_path / "home" / "user"
    (tmp_path / "home" / "user").chmod(0o710)  # searchable by the group only: the sandbox group will do
    os.chown(tmp_path / "home" / "user", -1, 20000)
    assert unsearchable_parent(deep, gid=20000) is None
    assert unsearchable_parent(deep, gid=20001) == tmp_path / "home" / "user"


async def test_a_task_workspace_behind_a_private_directory_is_a_clear_error(sandbox: Sandbox, tmp_path: Path) -> None:
    task = tmp_path / "root-home" / "workspaces" / "task"
    task.mkdir(parents=True)
    share_tree(task)
    (tmp_path / "root-home").chmod(0o700)  # what /root is on Debian: git would only say "failed to stat"
    token = workspace_module._current.set(task)
    try:
        with pytest.raises(CommandFailed, match=r"cannot reach the workspace .*root-home is not searchable"):
            await sandbox.run(["true"])
        (tmp_path / "root-home").chmod(0o711)
        assert (await sandbox.run(["true"])).exit_code == 0
    finally:
        workspace_module._current.reset(token)


async def test_a_secret_file_others_can_read_stops_every_command(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")
    token.chmod(0o644)
    monkeypatch.setenv("GITHUB_TOKEN_FILE", str(token))
    with pytest.raises(CommandFailed, match=r"readable by other users.*GITHUB_TOKEN_FILE"):
        await sandbox.run(["true"])
    token.chmod(0o600)
    assert (await sandbox.run(["true"])).exit_code == 0


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


async def test_a_shared_tree_is_writable_by_any_sandbox_uid_and_links_stay_untouched(
    sandbox: Sandbox, workspace: Path, tmp_path: Path
) -> None:
    tree = workspace / "task"
    (tree / "pkg").mkdir(parents=True, mode=0o755)
    (tree / "pkg" / "mod.py").write_text("x = 1\n")
    (tree / "pkg" / "mod.py").chmod(0o644)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    outside.chmod(0o644)
    (tree / "link").symlink_to(outside)
    share_tree(tree)
    first = await sandbox.run(["sh", "-c", "echo y = 2 >> pkg/mod.py && mkdir -p new && echo a > new/f"], cwd="task")
    assert first.exit_code == 0, first.stderr
    (tree / "by-agent.txt").write_text("root wrote this with umask 022\n")
    again = await sandbox.run(["sh", "-c", "echo b >> new/f && echo c >> by-agent.txt"], cwd="task")
    assert again.exit_code == 0, again.stderr
    assert (await sandbox.run(["sh", "-c", "echo no >> link"], cwd="task")).exit_code != 0
    assert outside.read_text() == "keep\n"
