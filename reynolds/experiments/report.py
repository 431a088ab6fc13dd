"""An experiment's report as people read it: Markdown tables and a PNG chart (matplotlib, Agg backend:
no display needed). Both are drawn from the stored JSON report alone, so a client can render them too."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt

CHART_METRICS = ("makespan_s", "overhead_s", "parallelism", "utilisation")


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Experiment: {report['name']}", ""]
    for warning in report["warnings"]:
        lines += [f"> **Warning:** {warning}", ""]
    for metric, by_strategy in report["metrics"].items():
        lines += [
            f"## {metric}",
            "",
            "| strategy | n | mean | stdev | 95 % CI | outlier runs |",
            "|---|---|---|---|---|---|",
        ]
        for strategy in report["strategies"]:
            s = by_strategy[strategy]
            ci = f"{_f(s['ci95'][0])} - {_f(s['ci95'][1])}" if s["ci95"] else "-"
            lines.append(
                f"| {strategy} | {s['n']} | {_f(s['mean'])} | {_f(s['stdev'])} | {ci} | {s['outliers'] or ''} |"
            )
        lines += ["", "| pair | Welch p | Cohen's d | Mann-Whitney p | rank-biserial r |", "|---|---|---|---|---|"]
        for p in report["pairs"][metric]:
            lines.append(
                f"| {p['a']} vs {p['b']} | {_f(p['welch_p'])} | {_f(p['cohens_d'])} | {_f(p['mann_whitney_p'])}"
                f" | {_f(p['rank_biserial'])} |"
            )
        lines.append("")
    lines += _hypothesis(report)
    winner = report.get("winner")
    if winner:
        kept = "remembered for strategy=auto" if winner["remembered"] else "not significant enough to remember"
        lines += [f"**Best on {winner['metric']}:** {winner['strategy']} ({kept}).", ""]
    return "\n".join(lines)


def _hypothesis(report: dict[str, Any]) -> list[str]:
    h = report.get("hypothesis")
    if not h:
        return []
    verdict = "supported" if h["supported"] else "not supported"
    lines = [f"## Hypothesis: {verdict} (alpha = {report['significance']})", "", f"_{h['statement']}_", ""]
    for c in h["claims"]:
        scaled = f"{c['ratio']} x " if c["ratio"] != 1 else ""
        lines.append(
            f"- {c['strategy']} {c['metric']} {c['direction'].replace('_', ' ')} than {scaled}{c['than']}: "
            f"{_f(c['mean'])} vs {_f(c['compared_to'])}, p = {_f(c['p'])} — **{c['verdict']}**"
            + (f" ({c['note']})" if c["note"] else "")
        )
    return [*lines, ""]


def chart(report: dict[str, Any]) -> bytes:
    """PNG: one panel per measured metric, each strategy's runs as dots with its mean and 95 % CI."""
    metrics = [m for m in CHART_METRICS if m in report["metrics"]] or list(report["metrics"])[:4]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        strategies = report["strategies"]
        for i, strategy in enumerate(strategies):
            values = [r["measures"][metric] for r in report["runs"] if r["strategy"] == strategy and r["measures"]]
            ax.scatter([i] * len(values), values, s=12, alpha=0.6, color="tab:blue")
            s = report["metrics"][metric][strategy]
            if s["mean"] is not None:
                low, high = s["ci95"] or (s["mean"], s["mean"])
                ax.errorbar(
                    i + 0.15,
                    s["mean"],
                    yerr=[[s["mean"] - low], [high - s["mean"]]],
                    fmt="o",
                    color="tab:red",
                    capsize=4,
                )
        ax.set_xticks(range(len(strategies)), strategies, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"{report['name']} (dots: runs; red: mean, 95 % CI)", fontsize=9)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    plt.close(fig)
    return out.getvalue()


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
