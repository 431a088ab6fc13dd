"""The team's coding standards as the code agent applies them: read from the context layer's
``team/standards.json``, with defaults for anything the file leaves out (or when it is absent)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from agents.runtime.context import AgentRuntime
from agents.runtime.errors import ToolError

STANDARDS_FILE = "team/standards.json"

DocstringKind = Literal["module", "public_class", "public_function"]


class RuffRules(BaseModel):
    select: list[str] = Field(default_factory=lambda: ["E", "F", "W", "I", "UP", "B"])
    ignore: list[str] = Field(default_factory=list)


class PythonStandards(BaseModel):
    line_length: int = Field(120, ge=40, le=400)
    target_version: str = Field("py311", pattern=r"^py3\d{1,2}$")
    max_complexity: int = Field(10, ge=1, le=100)
    max_function_lines: int = Field(60, ge=5)
    required_docstrings: list[DocstringKind] = Field(default_factory=lambda: ["public_class", "public_function"])
    ruff: RuffRules = Field(default_factory=RuffRules)


class PytestStandards(BaseModel):
    default_args: list[str] = Field(default_factory=lambda: ["-q"])
    default_timeout_s: float = Field(300, gt=0)
    max_timeout_s: float = Field(1800, gt=0)


class Standards(BaseModel):
    """Only the parts the code agent acts on; other keys in the file are kept for humans and ignored."""

    python: PythonStandards = Field(default_factory=PythonStandards)
    tests: PytestStandards = Field(default_factory=PytestStandards)


def load_standards(runtime: AgentRuntime) -> Standards:
    """The standards from context, read on every call so an updated mount takes effect at once."""
    raw = runtime.layers.read_structured("context", STANDARDS_FILE, default={})
    if not isinstance(raw, dict):
        raise ToolError(f"context file {STANDARDS_FILE} must hold a JSON object")
    try:
        return Standards.model_validate(raw)
    except ValidationError as err:
        raise ToolError(f"context file {STANDARDS_FILE} is invalid: {err}") from err
