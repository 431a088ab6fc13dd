"""Settings of the docker agent's one external service, the Docker daemon, read when a tool runs."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DockerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    docker_host: str = Field("", description="docker SDK endpoint; default unix:///var/run/docker.sock")
    docker_timeout_s: int = Field(10, ge=1)


def load_settings() -> DockerSettings:
    return DockerSettings()
