"""Reynolds settings: secrets from ``*_FILE`` paths (stripped), client tokens one per line, and the list of
values the log redactor must hide."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.code.llm import LLMSettings
from agents.devops.settings import DevopsSettings
from agents.platform.settings import PlatformSettings
from reynolds.config import UNSET_SECRET, Settings

SECRET_NAMES = ("CLIENT_TOKENS", "AGENT_TOKEN", "DATABASE_PASSWORD", "GITHUB_TOKEN")
AGENT_SECRETS = ("GITHUB_TOKEN", "OPENAI_API_KEY", "M365_CREDENTIALS", "TENANT_ID")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret from the surrounding environment leaks into these tests."""
    for name in SECRET_NAMES:
        monkeypatch.delenv(f"REYNOLDS_{name}", raising=False)
        monkeypatch.delenv(f"REYNOLDS_{name}_FILE", raising=False)
    for name in AGENT_SECRETS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


def secret_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_secrets_are_read_from_files_named_in_the_environment_and_stripped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REYNOLDS_AGENT_TOKEN_FILE", str(secret_file(tmp_path, "agent", "  agent-secret-1\n\n")))
    monkeypatch.setenv("REYNOLDS_DATABASE_PASSWORD_FILE", str(secret_file(tmp_path, "db", "pg-pass-22\n")))
    settings = Settings()
    assert settings.agent_token == "agent-secret-1"
    assert settings.database_password == "pg-pass-22"


def test_secret_files_can_be_given_as_arguments(tmp_path: Path) -> None:
    settings = Settings(agent_token_file=str(secret_file(tmp_path, "agent", "from-argument\n")))  # type: ignore[call-arg]
    assert settings.agent_token == "from-argument"


def test_a_value_given_directly_wins_over_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REYNOLDS_AGENT_TOKEN_FILE", str(secret_file(tmp_path, "agent", "from-file")))
    monkeypatch.setenv("REYNOLDS_AGENT_TOKEN", "from-env")
    assert Settings().agent_token == "from-env"


def test_client_tokens_are_one_per_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "REYNOLDS_CLIENT_TOKENS_FILE", str(secret_file(tmp_path, "clients", "alpha-1\n\n  beta-2  \r\ngamma-3"))
    )
    settings = Settings()
    assert settings.client_token_list == ["alpha-1", "beta-2", "gamma-3"]


def test_secrets_lists_every_configured_secret_and_nothing_empty(tmp_path: Path) -> None:
    settings = Settings(client_tokens="c1-token\nc2-token", agent_token=" agent-tok ", database_password="")
    assert settings.secrets == ["c1-token", "c2-token", "agent-tok"]
    assert Settings().secrets == []


def test_a_missing_secret_file_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "token"
    monkeypatch.setenv("REYNOLDS_AGENT_TOKEN_FILE", str(missing))
    with pytest.raises(OSError, match=str(missing)):
        Settings()


@pytest.mark.parametrize("content", ["", "\n", UNSET_SECRET, f"  {UNSET_SECRET}\n"])
def test_an_empty_or_unset_secret_file_is_not_configured(
    content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swarm refuses empty secrets, so make-secrets.sh writes the marker: both mean "not configured"."""
    for name in AGENT_SECRETS:
        monkeypatch.setenv(f"{name}_FILE", str(secret_file(tmp_path, name.lower(), content)))
    monkeypatch.setenv("REYNOLDS_GITHUB_TOKEN_FILE", str(secret_file(tmp_path, "github", content)))
    assert Settings().github_token == ""
    assert DevopsSettings().github_token == ""
    assert LLMSettings().openai_api_key == ""
    platform = PlatformSettings()
    assert (platform.m365_credentials, platform.tenant_id) == ("", "")


def test_a_missing_optional_secret_file_is_not_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment may leave an optional secret out; its *_FILE variable then names a file that is not there."""
    for name in AGENT_SECRETS:
        monkeypatch.setenv(f"{name}_FILE", str(tmp_path / "absent" / name.lower()))
    monkeypatch.setenv("REYNOLDS_GITHUB_TOKEN_FILE", str(tmp_path / "absent" / "github"))
    assert Settings().github_token == ""
    assert DevopsSettings().github_token == ""
    assert LLMSettings().openai_api_key == ""
    assert PlatformSettings().tenant_id == ""


def test_the_marker_is_only_the_whole_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN_FILE", str(secret_file(tmp_path, "github", f"{UNSET_SECRET}-not\n")))
    assert DevopsSettings().github_token == f"{UNSET_SECRET}-not"


def test_a_required_secret_marked_unset_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker never becomes a password; a missing required file stays an error (the test above)."""
    monkeypatch.setenv("REYNOLDS_DATABASE_PASSWORD_FILE", str(secret_file(tmp_path, "db", UNSET_SECRET)))
    assert Settings().database_password == ""


def test_other_settings_come_from_reynolds_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REYNOLDS_MAX_SUBTASKS", "12")
    monkeypatch.setenv("REYNOLDS_PERSONALITY", "off")
    monkeypatch.setenv("REYNOLDS_HEARTBEAT_TTL_S", "1.5")
    settings = Settings()
    assert (settings.max_subtasks, settings.personality, settings.heartbeat_ttl_s) == (12, "off", 1.5)


def test_an_empty_optional_setting_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose files pass optional settings as ${VAR:-}, i.e. as empty strings
    monkeypatch.setenv("REYNOLDS_GITHUB_REPO", "")
    assert Settings().github_repo == ""
    monkeypatch.setenv("REYNOLDS_GITHUB_REPO", "not a repo")
    with pytest.raises(ValueError, match="github_repo"):
        Settings()
