"""``reynolds experiment``: what it sends and what it writes (the caller is the main CLI's, injected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from reynolds.experiments.cli import experiment_group
from tests.unit.test_experiments_report import SCENARIO, runs

url = click.option("--url", default="u")
token = click.option("--token", default=None)


def group(answers: dict[str, Any], sent: list[tuple[str, dict[str, Any]]]) -> click.Group:
    def call(url: str, tok: str | None, tool: str, arguments: dict[str, Any], progress: Any = None) -> Any:
        sent.append((tool, arguments))
        return answers[tool]

    return experiment_group(url, token, call)


def view(state: str = "succeeded", report: dict | None = None) -> dict[str, Any]:
    return {
        "experiment_id": "e1",
        "name": "tiny",
        "state": state,
        "error": None,
        "runs_done": 6,
        "runs_total": 6,
        "report": report,
        "markdown": "# Experiment: tiny" if report else None,
    }


def test_run_sends_the_file_inline(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: tiny\n")
    sent: list = []
    result = CliRunner().invoke(group({"run_experiment": view("running")}, sent), ["run", str(path), "--no-wait"])
    assert result.exit_code == 0 and result.output.strip() == "e1"
    assert sent == [("run_experiment", {"scenario": "name: tiny\n", "wait": False})]


def test_show_writes_the_report_files(tmp_path: Path) -> None:
    from reynolds.experiments.runner import report

    r = json.loads(json.dumps(report(SCENARIO, runs())))
    result = CliRunner().invoke(
        group({"get_experiment": view(report=r)}, []), ["show", "e1", "--report", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "report.json").read_text()) == r
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "# Experiment: tiny" in result.output


def test_show_without_a_report_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        group({"get_experiment": view("running")}, []), ["show", "e1", "--report", str(tmp_path)]
    )
    assert result.exit_code == 1 and "is running: no report yet" in result.output
