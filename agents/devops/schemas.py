"""JSON schemas of the file formats the devops checks read, as packaged by check-jsonschema (PyPI): the
Compose Specification's schema (compose-spec.json) and SchemaStore's GitHub workflow schema. Reynolds
validates its own parsed data against them in-process (jsonschema; nothing from the file is run)."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator, ValidationError

from agents.runtime.errors import NotConfigured

COMPOSE = "compose-spec.json"
WORKFLOW = "github-workflows.json"
MAX_ERRORS = 50
UNEXPECTED = re.compile(r"\('([^']+)'(?:, '[^']+')* (?:was|were) unexpected\)")


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
    specific = [_specific(e) for e in found[:MAX_ERRORS]]
    return [(_where(e), _message(e.message)) for e in specific]


def _where(error: ValidationError) -> tuple[Any, ...]:
    """The path of the value at fault; for an unexpected key, the key itself (so the line is the key's)."""
    path = tuple(error.absolute_path)
    unexpected = UNEXPECTED.search(error.message) if error.validator == "additionalProperties" else None
    return (*path, unexpected.group(1)) if unexpected else path


def _specific(error: ValidationError) -> ValidationError:
    """For "not valid under any of the given schemas": the complaint deepest in the document, i.e. from the
    alternative that matched the most before failing (a job with `runs-on` is a normal job, not a call)."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def _message(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
