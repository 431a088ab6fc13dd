"""``reynolds experiment run FILE`` and ``reynolds experiment show ID``: the experiment tools from a terminal.

The group is built by ``experiment_group`` from the main CLI's client options and caller, so it shares their
URL/token handling and error messages without importing the CLI module."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

Caller = Callable[..., Any]  # (url, token, tool, arguments, progress=None) -> structured result
console = Console(stderr=True)


def experiment_group(url_option: Any, token_option: Any, call: Caller) -> click.Group:
    @click.group()
    def experiment() -> None:
        """What-if experiments: one workload under several strategies, compared with statistics."""

    @experiment.command()
    @click.argument("scenario_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--wait/--no-wait", default=True, show_default=True, help="follow the runs until the report")
    @click.option("--json", "as_json", is_flag=True, help="print the experiment as JSON")
    @url_option
    @token_option
    def run(scenario_file: Path, wait: bool, as_json: bool, url: str, token: str | None) -> None:
        """Run the scenario in SCENARIO_FILE (YAML); sent inline, so Reynolds need not see the file."""
        if scenario_file.stat().st_size > 64_000:
            raise click.ClickException(f"{scenario_file} is over 64000 bytes")
        args = {"scenario": scenario_file.read_text(errors="replace"), "wait": wait}
        if not wait:
            found = call(url, token, "run_experiment", args)
            click.echo(json.dumps(found, indent=2, default=str) if as_json else found["experiment_id"])
            return
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True
        ) as bar:
            line = bar.add_task("starting", total=None)

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                bar.update(line, completed=done, total=total, description=message or "running")

            found = call(url, token, "run_experiment", args, on_progress)
        _print(found, as_json)
        sys.exit(0 if found["state"] == "succeeded" else 1)

    @experiment.command()
    @click.argument("experiment_id")
    @click.option(
        "--report",
        "report_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="write report.json, report.md and chart.png here",
    )
    @click.option("--json", "as_json", is_flag=True, help="print the experiment as JSON")
    @url_option
    @token_option
    def show(experiment_id: str, report_dir: Path | None, as_json: bool, url: str, token: str | None) -> None:
        """An experiment's runs and report; with --report DIR, also its files."""
        found = call(url, token, "get_experiment", {"experiment_id": experiment_id})
        if report_dir is not None:
            if not found["report"]:
                raise click.ClickException(f"experiment {experiment_id} is {found['state']}: no report yet")
            write_report(found["report"], report_dir)
            console.print(f"report written to {report_dir}/ (report.json, report.md, chart.png)")
        _print(found, as_json)

    return experiment


def write_report(report: dict[str, Any], directory: Path) -> None:
    from reynolds.experiments.report import chart, markdown  # matplotlib only when a chart is wanted

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (directory / "report.md").write_text(markdown(report))
    (directory / "chart.png").write_bytes(chart(report))


def _print(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    click.echo(
        f"experiment {found['experiment_id']} ({found['name']}): {found['state']}, "
        f"{found['runs_done']}/{found['runs_total']} runs"
    )
    if found["error"]:
        click.echo(f"error: {found['error']}")
    if found["markdown"]:
        click.echo(found["markdown"])
