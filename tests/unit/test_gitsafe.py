"""gitsafe: the hardened argv/env, checked against a real git (the overrides must be the values git reads)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agents.runtime.gitsafe import CONFIG_LISTING, config_drivers, git_argv, git_env


def git(repo: Path, *argv: str, allow_file: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=repo, env=git_env(allow_file), capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    return tmp_path / "r"


def test_every_override_wins_over_the_repository_config(repo: Path) -> None:
    for key in ("core.hooksPath", "core.fsmonitor", "core.pager", "credential.helper", "gpg.program"):
        subprocess.run(["git", "config", key, "touch pwned"], cwd=repo, check=True)
    for key, want in [
        ("core.hooksPath", "/dev/null"),
        ("core.fsmonitor", "false"),
        ("core.pager", "cat"),
        ("credential.helper", ""),
        ("gpg.program", "false"),
        ("safe.bareRepository", "explicit"),
        ("protocol.allow", "never"),
    ]:
        assert git(repo, *git_argv("config", "--get", key)).stdout.strip() == want, key


def test_diff_commands_get_no_ext_diff_and_no_textconv() -> None:
    argv = git_argv("diff", "--stat")
    assert argv[0:2] == ["git", "--no-pager"]
    assert argv[argv.index("diff") :] == ["diff", "--no-ext-diff", "--no-textconv", "--stat"]
    assert git_argv("blame", "x")[-3:] == ["blame", "--no-textconv", "x"]
    assert git_argv("status")[-1] == "status"


@pytest.mark.parametrize("args", [(), ("-C", "/", "status"), ("--exec-path=/tmp", "status")])
def test_global_options_are_not_the_callers_to_set(args: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="subcommand first"):
        git_argv(*args)


def test_drivers_from_the_config_listing_are_switched_off(repo: Path) -> None:
    for key in ("filter.lfs.clean", "filter.My.Sub.process", "diff.bin.textconv", "merge.ours.driver", "user.name"):
        subprocess.run(["git", "config", key, "x"], cwd=repo, check=True)
    listing = git(repo, *git_argv(*CONFIG_LISTING)).stdout
    found = config_drivers(listing)
    assert found == [("diff", "bin"), ("filter", "My.Sub"), ("filter", "lfs"), ("merge", "ours")]
    argv = git_argv("config", "--get", "filter.My.Sub.process", drivers=found)
    assert git(repo, *argv).stdout == "\n"  # empty: git runs no process filter
    assert "merge.ours.driver=false" in git_argv("status", drivers=found)


@pytest.mark.parametrize("name", ["a=b", "two\nlines"])
def test_a_driver_name_git_cannot_override_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="refusing a repository"):
        git_argv("status", drivers=[("filter", name)])


def test_transports_are_an_allow_list(repo: Path, tmp_path: Path) -> None:
    assert git_env()["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert git_env(allow_file=True)["GIT_ALLOW_PROTOCOL"] == "https:ssh:file"
    for source in (str(repo), f"file://{repo}", "ext::sh -c touch% pwned", "git://127.0.0.1:1/x"):
        done = git(tmp_path, *git_argv("clone", "--", source, "copy"))
        assert done.returncode != 0 and "not allowed" in done.stderr, source
    assert not (tmp_path / "pwned").exists()
    assert git(tmp_path, *git_argv("clone", "-q", "--", str(repo), "copy"), allow_file=True).returncode == 0


def test_no_system_or_global_config_is_read() -> None:
    env = git_env()
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ASKPASS"] == ""
