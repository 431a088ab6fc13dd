"""The estate as the context layer describes it: ``infrastructure/environments.json`` (environments,
their ALM policy, the publisher and naming conventions) and the DLP part of
``business/compliance.json``. Tools read it through ``load_estate`` and never guess a missing policy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from agents.runtime.errors import ToolError
from agents.runtime.layers import Layers

ENVIRONMENTS_FILE = "infrastructure/environments.json"
COMPLIANCE_FILE = "business/compliance.json"


class Policy(BaseModel):
    allow_unmanaged: bool = Field(False, description="unmanaged solutions may be imported")
    promote_from: list[str] = Field(
        default_factory=list, description="a solution must reach one of these environments first"
    )
    solution_checker: Literal["required", "recommended", "off"] = "recommended"
    approval_required: bool = False
    publisher_prefix: str | None = Field(None, description="overrides the estate's customization prefix")


class Environment(BaseModel):
    name: str
    display_name: str | None = None
    stage: str = Field(description="dev | test | prod (position in the promotion order)")
    type: str = Field(description="developer | sandbox | production | trial | default")
    url: str
    region: str
    dataverse: bool = True
    policy: Policy = Field(default_factory=Policy)


class PublisherConvention(BaseModel):
    unique_name: str | None = None
    display_name: str | None = None
    customization_prefix: str
    option_value_prefix: int | None = None


class Naming(BaseModel):
    solution_unique_name: str | None = Field(None, description="regex a solution's UniqueName must match")
    component_schema_name: str | None = Field(None, description="regex; {prefix} stands for the prefix")
    notes: str | None = None


class DlpPolicy(BaseModel):
    name: str
    applies_to: Literal["*"] | list[str] = "*"
    blocked_connectors: list[str] = Field(default_factory=list)
    business_connectors: list[str] = Field(default_factory=list)

    def covers(self, environment: str | None) -> bool:
        """Tenant-wide policies always apply; others only when the target environment is named."""
        return self.applies_to == "*" or (environment is not None and environment in self.applies_to)


class Estate(BaseModel):
    publisher: PublisherConvention | None = None
    naming: Naming = Field(default_factory=Naming)
    promotion_order: list[str] = Field(default_factory=list, description="stages, earliest first")
    environments: list[Environment]
    dlp_policies: list[DlpPolicy] = Field(default_factory=list)

    def find(self, name_or_url: str) -> Environment | None:
        """An environment by name (case-insensitive) or by its URL."""
        wanted = name_or_url.strip().lower().rstrip("/")
        for env in self.environments:
            if env.name.lower() == wanted or env.url.lower().rstrip("/") == wanted:
                return env
        return None

    def require(self, name_or_url: str) -> Environment:
        env = self.find(name_or_url)
        if env is None:
            known = ", ".join(e.name for e in self.environments)
            raise ToolError(f"unknown environment {name_or_url!r}; known environments: {known}")
        return env

    def prefix_for(self, env: Environment | None) -> str | None:
        if env is not None and env.policy.publisher_prefix:
            return env.policy.publisher_prefix
        return self.publisher.customization_prefix if self.publisher else None


def load_estate(layers: Layers) -> Estate:
    """Environments and DLP policies from the context layer, or ToolError when they are missing/invalid."""
    raw = layers.read_structured("context", ENVIRONMENTS_FILE)
    if raw is None:
        raise ToolError(f"no environments configured: context file {ENVIRONMENTS_FILE} is missing")
    compliance = layers.read_structured("context", COMPLIANCE_FILE, default={}) or {}
    if not isinstance(raw, dict) or not isinstance(compliance, dict):
        raise ToolError(f"{ENVIRONMENTS_FILE} and {COMPLIANCE_FILE} must each hold a JSON object")
    try:
        estate = Estate.model_validate({**raw, "dlp_policies": compliance.get("dlp_policies", [])})
    except ValidationError as err:
        raise ToolError(f"context file {ENVIRONMENTS_FILE} or {COMPLIANCE_FILE} is invalid: {err}") from err
    names = [env.name for env in estate.environments]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolError(f"{ENVIRONMENTS_FILE} names an environment more than once: {', '.join(duplicates)}")
    return estate
