"""The README documents what the code has: every setting, every client tool, every CLI command."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from reynolds.cli import main
from reynolds.config import Settings
from reynolds.server import Holder, client_server

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(name: str) -> None:
    variable = f"REYNOLDS_{name.upper()}"
    # grouped rows name the first variable in full and the rest by their suffix (`_MIN`)
    assert variable in README or f"`_{name.upper().split('_', 1)[-1]}`" in README, variable


def test_every_client_tool_is_in_the_readme() -> None:
    server = client_server(Holder(), "k" * 64)
    names = [t.name for t in anyio.run(server.list_tools)]
    assert names
    for name in names:
        assert f"`{name}`" in README, name


def test_every_cli_command_is_in_the_readme() -> None:
    for name in main.commands:
        assert f"reynolds {name}" in README, name
