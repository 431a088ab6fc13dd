"""Settings of the devops agent's external services, read from the environment when a tool runs
(so a token mounted or rotated while the agent runs is picked up)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.runtime.errors import NotConfigured
from reynolds.config import read_secret_files


class DevopsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    github_token: str = Field("", description="GitHub token (or GITHUB_TOKEN_FILE, the usual way)")
    github_base_url: str = Field("https://api.github.com", description="GitHub Enterprise: https://host/api/v3")
    github_timeout_s: int = Field(30, ge=1)
    github_write_interval_s: float = Field(1.0, ge=0, description="pause between writes (GitHub's guidance: 1 s)")

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, values: dict) -> dict:
        return read_secret_files(values, ["github_token"], optional=["github_token"])


def load_settings() -> DevopsSettings:
    """Current settings; an unreadable secret file is a configuration problem, said plainly."""
    try:
        return DevopsSettings()
    except OSError as err:
        raise NotConfigured(f"cannot read a secret file ({err}): check GITHUB_TOKEN_FILE") from err
