"""Compose interpolation as the Compose Specification defines it, from a .env file only."""

from __future__ import annotations

from pathlib import Path

from agents.devops.interpolate import interpolate, read_env_file


def test_every_form_of_the_syntax() -> None:
    data = {
        "a": "${PORT:-8080}:80",
        "b": "$$HOME $X",
        "c": "${REQ:?set REQ}",
        "d": ["${IMG:-${REG:-docker.io}/app}:${TAG-latest}"],
        "e": "${Y:+yes}${Z:+no}",
        "f": "${EMPTY:-fallback}|${EMPTY-kept}",
        "g": 8080,
    }
    done = interpolate(data, {"Y": "1", "EMPTY": ""})
    assert done.data == {
        "a": "8080:80",
        "b": "$HOME ",
        "c": "",
        "d": ["docker.io/app:latest"],
        "e": "yes",
        "f": "fallback|",
        "g": 8080,
    }
    assert done.unset == {("b",): ["X"]}
    assert done.required == {("c",): ["REQ: set REQ"]}


def test_env_file_forms_and_hostile_lines(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(
        b"# comment\nexport A=1\nB='two words'\nC=\"x\" \nD=plain # trailing\nnot a line\n1BAD=x\nE=\xff\n"
    )
    assert read_env_file(tmp_path) == {"A": "1", "B": "two words", "C": "x", "D": "plain", "E": "\ufffd"}
    assert read_env_file(tmp_path / "missing") == {}
