"""JSON schemas of the file formats the devops checks read, as packaged by check-jsonschema (PyPI): the
Compose Specification's schema (compose-spec.json) and SchemaStore's GitHub workflow schema. Reynolds
validates its own parsed data against them in-process (jsonschema; nothing from the file is run)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator

from agents.runtime.errors import NotConfigured

COMPOSE = "compose-spec.json"
WORKFLOW = "github-workflows.json"
MAX_ERRORS = 50


@functools.cache
def validator(name: str) -> Draft7Validator:
    try:
        text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(name).read_text("utf-8")
    except ModuleNotFoundError as err:
        raise NotConfigured("check-jsonschema is not installed: pip install check-jsonschema") from err
    return Draft7Validator(json.loads(text))


def problems(data: Any, name: str) -> list[tuple[tuple[Any, ...], str]]:
    """(path in the document, message) of the first schema violations, shallowest first."""
    found = sorted(validator(name).iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    return [(tuple(e.absolute_path), _message(e.message)) for e in found[:MAX_ERRORS]]


def _message(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
