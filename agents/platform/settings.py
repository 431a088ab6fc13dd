"""Settings of the platform agent only: Microsoft Graph credentials and URLs, where to find ``pac``,
and the limits applied to solution packages. Read when a tool runs, so a changed secret file or
environment variable is seen without a restart."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.runtime.errors import NotConfigured, ToolError
from reynolds.config import read_secret_files

GRAPH_NOT_CONFIGURED = "Microsoft Graph not configured: set M365_CREDENTIALS_FILE and TENANT_ID_FILE"


class PlatformSettings(BaseSettings):
    """Environment variables of the platform agent (secrets come from ``*_FILE`` paths)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    m365_credentials: str = Field(
        "", description='JSON {"client_id": ..., "client_secret": ...} (M365_CREDENTIALS_FILE)'
    )
    tenant_id: str = Field("", description="Entra ID tenant id or domain (TENANT_ID_FILE)")
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    graph_login_base_url: str = "https://login.microsoftonline.com"
    graph_timeout_s: float = Field(30.0, gt=0)
    pac_search_path: str | None = Field(
        None, description="directories searched for the pac binary (os.pathsep separated); default PATH"
    )
    pac_timeout_s: float = Field(900.0, gt=0, description="imports of large solutions take minutes")
    solution_max_archive_bytes: int = Field(200_000_000, ge=1024)
    solution_max_members: int = Field(20_000, ge=1)
    solution_max_xml_bytes: int = Field(64_000_000, ge=1024)
    # XML compresses 10-30x; a member far beyond that is a decompression bomb, not a solution
    solution_max_compression_ratio: int = Field(200, ge=10)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, values: dict) -> dict:
        names = ["m365_credentials", "tenant_id"]
        return read_secret_files(values, names, optional=names)


class GraphCredentials(BaseModel):
    """An app registration allowed to call Graph with the client-credentials grant."""

    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


def load_settings() -> PlatformSettings:
    """Current settings; an unreadable secret file is reported, not raised as a bare OSError."""
    try:
        return PlatformSettings()
    except OSError as err:
        raise NotConfigured(f"cannot read a platform agent secret file: {err}") from err
    except ValidationError as err:
        raise ToolError(f"invalid platform agent settings: {err}") from err


def graph_credentials(settings: PlatformSettings) -> GraphCredentials:
    """The Graph app credentials, or NotConfigured naming the variables to set."""
    if not settings.m365_credentials or not settings.tenant_id:
        raise NotConfigured(GRAPH_NOT_CONFIGURED)
    try:
        raw = json.loads(settings.m365_credentials)
        return GraphCredentials(tenant_id=settings.tenant_id, **raw)
    except (json.JSONDecodeError, TypeError, ValidationError) as err:
        raise NotConfigured(
            "Microsoft Graph not configured: M365_CREDENTIALS_FILE must hold JSON with non-empty "
            f'"client_id" and "client_secret" ({type(err).__name__})'
        ) from err
