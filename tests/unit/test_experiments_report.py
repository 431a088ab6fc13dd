"""Reports render as Markdown and as a real PNG drawn by matplotlib."""

from __future__ import annotations

import io

from matplotlib import image

from reynolds.experiments.report import chart, markdown
from reynolds.experiments.runner import report
from reynolds.experiments.scenario import parse

SCENARIO = parse(
    """
name: tiny
workload: {generate: {component_count: 2}}
strategies: [sequential, parallel]
repetitions: 3
hypothesis:
  statement: parallel is faster
  claims: [{metric: makespan_s, strategy: parallel, direction: lower, than: sequential}]
"""
)


def runs() -> list[dict]:
    out = []
    for seq, (strategy, makespan) in enumerate(
        [
            ("sequential", 2.0),
            ("parallel", 1.0),
            ("parallel", 1.1),
            ("sequential", 2.1),
            ("sequential", 1.9),
            ("parallel", 0.9),
        ]
    ):
        m = {
            "makespan_s": makespan,
            "success_rate": 1.0,
            "retries": 0.0,
            "overhead_s": 0.01,
            "parallelism": 1.0,
            "utilisation": 0.5,
        }
        out.append({"seq": seq, "strategy": strategy, "repetition": seq // 2, "task_id": None, "measures": m})
    return out


def test_report_summarises_tests_and_picks_a_winner() -> None:
    r = report(SCENARIO, runs())
    assert r["metrics"]["makespan_s"]["parallel"]["mean"] == 1.0
    assert r["hypothesis"]["supported"]
    assert r["winner"]["strategy"] == "parallel" and r["winner"]["remembered"]
    assert r["warnings"] and "fewer than 5" in r["warnings"][0]


def test_an_unfinished_run_is_left_out() -> None:
    partial = runs()
    partial[0]["measures"] = None
    assert report(SCENARIO, partial)["metrics"]["makespan_s"]["sequential"]["n"] == 2


def test_markdown_names_the_verdict_and_the_numbers() -> None:
    text = markdown(report(SCENARIO, runs()))
    assert "# Experiment: tiny" in text and "## Hypothesis: supported" in text
    assert "| parallel | 3 | 1 |" in text and "| sequential vs parallel |" in text
    assert "**Best on makespan_s:** parallel (remembered for strategy=auto)." in text


def test_the_chart_is_a_png_matplotlib_can_read_back() -> None:
    png = chart(report(SCENARIO, runs()))
    assert png.startswith(b"\x89PNG")
    pixels = image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300


def test_a_scenario_without_a_hypothesis_still_reports() -> None:
    plain = parse("name: plain\nworkload: {generate: {component_count: 2}}\nstrategies: [sequential, parallel]\n")
    r = report(plain, runs())
    assert r["hypothesis"] is None and r["winner"]["metric"] == "makespan_s"
    assert "Hypothesis" not in markdown(r)
