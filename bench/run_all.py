"""Run the four benchmarks one after another (never at once: they would measure each other) and print
one JSON document holding their results. Exits non-zero if any benchmark fails or prints no JSON.

    .venv/bin/python -m bench.run_all --tiny   # small sizes, well under a minute: keeps the benchmarks working
    .venv/bin/python -m bench.run_all          # full sizes, several minutes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from tests.integration.cluster import REPO

FULL: dict[str, list[str]] = {"routing": [], "single": ["--workers", "1,2"], "makespan": [], "scale": []}
TINY: dict[str, list[str]] = {
    "routing": ["--n", "60", "--replicas", "1", "--serial", "3", "--rounds", "1"],
    "single": ["--calls", "20", "--concurrency", "1,4", "--rounds", "1", "--workers", "1,2"],
    "makespan": ["--nodes", "8", "--replicas", "1"],
    "scale": ["--sizes", "10,40", "--replicas", "1"],
}


def run(name: str, args: list[str], timeout_s: float) -> tuple[dict[str, Any] | None, str | None, float]:
    """(its JSON document, None) or (None, why it failed), and how long it took."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {timeout_s:g} s", time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        return None, f"exit code {done.returncode}: {done.stderr.strip()[-2000:]}", elapsed
    try:
        return json.loads(done.stdout), None, elapsed
    except json.JSONDecodeError as err:
        return None, f"printed no JSON document ({err}): {done.stdout[-500:]}", elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, to check the benchmarks still run")
    args = parser.parse_args(argv)
    plans, timeout_s = (TINY, 60.0) if args.tiny else (FULL, 1800.0)
    report: dict[str, Any] = {"tiny": args.tiny, "benchmarks": {}, "failures": {}}
    for name, bench_args in plans.items():
        document, failure, elapsed = run(name, bench_args, timeout_s)
        print(f"{name}: {'ok' if failure is None else 'FAILED'} in {elapsed:.1f} s", file=sys.stderr)
        if failure is None:
            report["benchmarks"][name] = document
        else:
            report["failures"][name] = failure
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
