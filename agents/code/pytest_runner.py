"""Running pytest in the sandbox and reading its JUnit XML report into counts and per-test outcomes.

What is tested is the workspace's code: every ``src/`` from the tested directory up to the workspace
root, then that directory and the root, come first on ``PYTHONPATH``, ahead of the agent's
site-packages. The workspace's config files cannot undo the
arguments the agent sets: ``-o addopts=`` drops every ``addopts`` (pytest.ini, pyproject.toml,
setup.cfg, tox.ini), and the caller may pass none of the options that set plugins, config or report."""

from __future__ import annotations

import os
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

from agents.runtime.errors import CommandFailed, PathOutsideWorkspace, ToolError
from agents.runtime.layers import resolve_inside
from agents.runtime.sandbox import Sandbox

REPORT_DIR = ".reynolds/pytest"  # inside the workspace; the tree walkers skip .reynolds
MAX_MESSAGE_CHARS = 4_000
MAX_OUTPUT_TAIL = 4_000
MAX_REPORT_BYTES = 50_000_000
# pytest options a caller may not pass: they would move or suppress the report we read, load code, or
# bring back config the agent overrides (`-o addopts=...`, another ini file)
FORBIDDEN_ARGS = (
    "--junitxml",
    "--junit-xml",
    "--junit-prefix",
    "--rootdir",
    "--confcutdir",
    "--basetemp",
    "--override-ini",
    "--config-file",
    "--inifile",
)
# short options that take such a value; argparse also reads them inside a cluster (`-xp name`)
FORBIDDEN_SHORT = frozenset("poc")

# pytest's documented exit codes
EXIT_NO_TESTS = 5
EXIT_MEANING = {
    0: "all tests passed",
    1: "some tests failed",
    2: "interrupted (usually collection errors)",
    3: "internal pytest error",
    4: "usage error (bad arguments)",
    5: "no tests collected",
}


class CaseOutcome(BaseModel):
    name: str = Field(description="dotted module (and class) :: test name, e.g. tests.test_x.TestA::test_b")
    outcome: str = Field(description="passed | failed | error | skipped")
    duration_s: float
    message: str | None = Field(None, description="failure/error/skip message")
    details: str | None = Field(None, description="traceback text, truncated")


class PytestReport(BaseModel):
    path: str
    exit_code: int
    exit_meaning: str
    passed: int
    failed: int
    errors: int
    skipped: int
    total: int
    duration_s: float
    tests: list[CaseOutcome]
    no_tests_collected: bool
    report_file: str | None = Field(description="JUnit XML written into the workspace")
    output_tail: str = Field(description="last part of pytest's console output")
    summary: str


def check_args(args: list[str]) -> None:
    """Refuse options that would redirect the report or load plugins (see FORBIDDEN_ARGS), and paths
    that leave the workspace."""
    for arg in args:
        value = arg.split("=", 1)[-1]  # "--opt=value" carries a path in its value
        if value.startswith("/") or ".." in Path(value).parts:
            raise ToolError(f"pytest argument {arg!r} points outside the workspace")
        short = arg.startswith("-") and not arg.startswith("--") and FORBIDDEN_SHORT & set(arg[1:].split("=")[0])
        if short or any(arg == bad or arg.startswith(bad + "=") for bad in FORBIDDEN_ARGS):
            raise ToolError(f"pytest argument {arg!r} is not allowed here; the agent sets the report and plugins")


def _test_name(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "")
    # junit's classname is the dotted module (plus class), e.g. "tests.test_x.TestA"
    return f"{classname}::{name}" if classname else name


def _outcome(case: ET.Element) -> tuple[str, str | None, str | None]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        node = case.find(tag)
        if node is not None:
            details = (node.text or "").strip()[:MAX_MESSAGE_CHARS] or None
            return outcome, (node.get("message") or "")[:MAX_MESSAGE_CHARS] or None, details
    return "passed", None, None


def parse_junit(xml_text: str) -> list[CaseOutcome]:
    """Per-test outcomes from a pytest JUnit XML report."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as err:
        raise ToolError(f"pytest's JUnit report is not valid XML: {err}") from err
    return [
        CaseOutcome(
            name=_test_name(case),
            outcome=outcome,
            duration_s=round(float(case.get("time") or 0), 3),
            message=message,
            details=details,
        )
        for case in root.iter("testcase")
        for outcome, message, details in [_outcome(case)]
    ]


def _summary(tests: list[CaseOutcome], count: dict[str, int], duration_s: float) -> str:
    summary = (
        f"{count['passed']} passed, {count['failed']} failed, {count['error']} error(s), "
        f"{count['skipped']} skipped in {duration_s:g} s"
    )
    broken = [t.name for t in tests if t.outcome in ("failed", "error")]
    return summary + ("; failing: " + ", ".join(broken[:10]) if broken else "")


def workspace_pythonpath(workspace: Path, cwd: Path) -> str:
    """Import roots inside the workspace: every ``src/`` from ``cwd`` up to the workspace root (the
    src layout), then ``cwd`` and the root themselves."""
    here = [cwd, *(p for p in cwd.parents if p == workspace or workspace in p.parents)]
    roots = [d / "src" for d in here if (d / "src").is_dir()] + [cwd, workspace]
    return os.pathsep.join(dict.fromkeys(str(r) for r in roots))


def read_report(workspace: Path, report: Path) -> str | None:
    """The report pytest wrote, or None. The tests ran as repository content and may have replaced it
    with a link: a link, a path out of the workspace or a huge file is not read."""
    try:
        resolve_inside(workspace, report.relative_to(workspace))
        fd = os.open(report, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, PathOutsideWorkspace):
        return None
    with open(fd, "rb") as f:
        if not os.path.isfile(f"/proc/self/fd/{fd}") or os.fstat(fd).st_size > MAX_REPORT_BYTES:
            return None
        return f.read().decode(errors="replace")


async def run_pytest(
    sandbox: Sandbox, target: Path, shown: str, args: list[str], timeout_s: float, network: bool = False
) -> PytestReport:
    """Run ``python -m pytest`` on ``target`` (from its directory) and read the JUnit report it writes;
    no network unless ``network``."""
    check_args(args)
    workspace = sandbox.root_for_call().resolve()
    report_rel = f"{REPORT_DIR}/junit-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.xml"
    report = anyio.Path(workspace / report_rel)
    # pytest makes the report directory itself, as the sandbox uid, so it can write there
    target_is_file = await anyio.Path(target).is_file()
    cwd = target.parent if target_is_file else target
    argv = [
        sys.executable,
        "-m",
        "pytest",
        f"--junitxml={report}",
        "-p",
        "no:cacheprovider",  # no .pytest_cache written into the caller's tree
        "-o",
        "addopts=",
        f"--rootdir={cwd}",
        f"--confcutdir={workspace}",  # no conftest.py from above the workspace
        *args,
    ]
    if target_is_file:
        argv.append(target.name)
    try:
        result = await sandbox.run(
            argv,
            cwd=cwd.relative_to(workspace).as_posix() or ".",
            timeout_s=timeout_s,
            env={"PYTHONPATH": workspace_pythonpath(workspace, cwd), "PYTHONDONTWRITEBYTECODE": "1"},
            network=network,
        )
    except CommandFailed as err:
        if "did not finish" in str(err):
            raise CommandFailed(f"pytest in {shown} timed out after {timeout_s:g} s and was stopped") from err
        raise
    if result.exit_code in (3, 4) or (result.exit_code not in EXIT_MEANING):
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise CommandFailed(f"pytest could not run in {shown} (exit {result.exit_code}): {output}")
    xml_text = await anyio.to_thread.run_sync(read_report, workspace, Path(report))
    written = xml_text is not None
    tests = parse_junit(xml_text) if xml_text is not None else []
    count = {k: sum(t.outcome == k for t in tests) for k in ("passed", "failed", "error", "skipped")}
    no_tests = result.exit_code == EXIT_NO_TESTS
    summary = f"no tests collected in {shown}" if no_tests else _summary(tests, count, result.duration_s)
    return PytestReport(
        path=shown,
        exit_code=result.exit_code,
        exit_meaning=EXIT_MEANING[result.exit_code],
        passed=count["passed"],
        failed=count["failed"],
        errors=count["error"],
        skipped=count["skipped"],
        total=len(tests),
        duration_s=result.duration_s,
        tests=tests,
        no_tests_collected=no_tests,
        report_file=report_rel if written else None,
        output_tail=(result.stdout + result.stderr)[-MAX_OUTPUT_TAIL:],
        summary=summary,
    )
