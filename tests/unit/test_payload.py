"""Every tool output becomes a storable, bounded JSON value, and the note says what changed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from reynolds.payload import (
    MAX_DEPTH,
    PREVIEW_CHARS,
    first_unstorable,
    is_truncated,
    jsonb_bytes,
    safe_output,
    safe_text,
)

LIMIT = 10_000


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


def test_a_clean_result_is_kept_as_it_is_without_a_note() -> None:
    result = {"summary": "2 findings", "items": [1, 2.5, None, True, "é"]}
    assert safe_output(result, LIMIT) == (result, None)


def test_nul_bytes_in_values_and_keys_are_replaced_and_counted() -> None:
    value, note = safe_output({"out\x00": ["a\x00b\x00"]}, LIMIT)
    assert value == {"out\ufffd": ["a\ufffdb\ufffd"]}
    assert note == "3 NUL or undecodable characters replaced with U+FFFD"


def test_lone_surrogates_from_undecodable_bytes_are_replaced() -> None:
    text = b"ok \xff\xfe end".decode("utf-8", "surrogateescape")
    value, note = safe_output({"text": text}, LIMIT)
    assert value == {"text": "ok \ufffd\ufffd end"}
    assert note is not None and "2 NUL or undecodable" in note
    json.dumps(value).encode()  # now encodable


def test_nan_and_infinities_become_strings() -> None:
    value, note = safe_output([math.nan, math.inf, -math.inf, 1.5], LIMIT)
    assert value == ["nan", "inf", "-inf", 1.5]
    assert note == "3 NaN or infinite numbers stored as strings"


def test_values_nested_too_deep_are_cut_with_a_note() -> None:
    value, note = safe_output(nested(MAX_DEPTH + 50), LIMIT)
    depth = 0
    while isinstance(value, dict):
        value, depth = value["d"], depth + 1
    assert depth == MAX_DEPTH and "nested deeper" in value
    assert note is not None and f"deeper than {MAX_DEPTH} levels" in note


def test_values_without_a_json_form_are_kept_as_text() -> None:
    value, note = safe_output({"when": {1, 2}, "t": (1, 2)}, LIMIT)
    assert value == {"when": "{1, 2}", "t": [1, 2]}
    assert note == "1 values with no JSON form stored as their text"


def test_a_result_over_the_cap_is_a_bounded_preview_with_its_size() -> None:
    huge = {"text": "x" * 1_000_000}
    value, note = safe_output(huge, LIMIT)
    assert is_truncated(value)
    assert value["$truncated"]["size_bytes"] == len(json.dumps(huge, separators=(",", ":")))
    assert value["$truncated"]["limit_bytes"] == LIMIT
    assert value["preview"].startswith('{"text":"xxx') and len(value["preview"]) == min(PREVIEW_CHARS, LIMIT // 8)
    assert len(json.dumps(value)) < LIMIT
    assert note is not None and "max_result_bytes" in note


@pytest.mark.parametrize("char", ["\x01", "é", "😀"])
def test_the_preview_fits_even_the_smallest_limit(char: str) -> None:
    value, _ = safe_output(char * 100_000, 1024)
    assert is_truncated(value)
    assert len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) <= 1024


def test_the_size_counts_utf8_bytes() -> None:
    assert not is_truncated(safe_output("é" * 10, 22)[0])  # '"' + 20 bytes + '"'
    assert is_truncated(safe_output("é" * 10, 21)[0])


def test_error_text_is_cleaned_and_cut() -> None:
    assert safe_text("bad\x00", 100) == "bad\ufffd"
    cut = safe_text("y" * 1000, 10)
    assert cut.startswith("y" * 10 + "…") and "1000 characters; cut at 10" in cut


@pytest.mark.parametrize(
    "value",
    [{"a": "x\x00"}, ["lone \udcff"], {"n": math.nan}, nested(5000), {"s": {1}}, "\\u0000 (literally)"],
)
def test_the_jsonb_encoder_refuses_nothing(value: Any) -> None:
    text = jsonb_bytes(value).decode()
    assert "\\u0000" not in text.replace("\\\\u0000", "")
    assert "NaN" not in text
    json.loads(text)


def test_the_jsonb_encoder_keeps_clean_values_exactly() -> None:
    value = {"a": [1, "é", None], "b\\u0000": "\\u0000"}  # backslashes, not NUL
    assert json.loads(jsonb_bytes(value)) == value


def test_first_unstorable_names_the_path() -> None:
    assert first_unstorable({"a": [1, {"b": "ok"}, {"c": "x\x00"}]}) == "a.2.c"
    assert first_unstorable({"k\x00": 1}) == "k\x00"
    assert first_unstorable({"a": ["fine", 3, None]}) is None
