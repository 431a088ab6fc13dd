"""The ``reynolds`` command: run the service and agents, migrate, and talk to a running Reynolds."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import click
import structlog
import uvicorn
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reynolds import client as rclient
from reynolds import errors
from reynolds.experiments.cli import experiment_group

console = Console(stderr=True)
STATE_COLOURS = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "skipped": "magenta",
    "awaiting_approval": "blue",
}


@click.group()
@click.version_option(package_name="reynolds")
def main() -> None:
    """Reynolds: hand it a plan, it runs the tool calls in parallel on specialist MCP agents."""


# ---------------------------------------------------------------------- running things
@main.command()
@click.option("--host", default=None, help="bind address (REYNOLDS_HOST)")
@click.option("--port", type=int, default=None, help="port (REYNOLDS_PORT)")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="processes sharing the port and the queue, one per core (REYNOLDS_WORKERS) [default: 1]",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run Reynolds: the MCP endpoints, the dispatcher and upkeep, until interrupted."""
    from reynolds import workers as supervisor
    from reynolds.config import Settings
    from reynolds.logs import configure_logging
    from reynolds.server import Holder, build_app
    from reynolds.tracing import traced

    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings = _or_exit(lambda: Settings(**overrides))
    configure_logging(settings.log_level, settings.secrets, settings.log_format)
    index = supervisor.worker_index()
    if settings.workers > 1 and index is None:
        sys.exit(_or_exit(lambda: supervisor.supervise(settings)))
    sockets = None
    if index is not None:
        supervisor.die_with_supervisor()
        structlog.contextvars.bind_contextvars(worker=index)  # every log line says which worker wrote it
        sockets = [_or_exit(lambda: supervisor.listen(settings.host, settings.port))]
    holder = Holder()
    app = _or_exit(lambda: build_app(settings, holder))
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    holder.stop = lambda: setattr(server, "should_exit", True)
    instance = {"service.instance.id": f"{socket.gethostname()}-{os.getpid()}"}  # several may serve one fleet
    # uvicorn re-raises the signal it shut down on once it is done: SIGTERM as SIGINT is, so the spans still
    # buffered are exported and the exit status below is the one used
    signal.signal(signal.SIGTERM, _interrupt)
    with traced("reynolds", instance), contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    sys.exit(1 if holder.fatal or not server.started else 0)  # it gave up or never started (see Service.fail)


@main.command()
@click.option("--type", "agent_type", default=None, help="devops | platform | code | workbench (AGENT_TYPE)")
@click.option("--port", type=int, default=None, help="port (AGENT_PORT)")
def agent(agent_type: str | None, port: int | None) -> None:
    """Run one agent replica; it registers itself with Reynolds at MCP_ENDPOINT."""
    from agents.runtime.app import build_app
    from agents.runtime.settings import AgentSettings
    from reynolds.logs import configure_logging
    from reynolds.tracing import traced

    overrides = {k: v for k, v in {"agent_type": agent_type, "agent_port": port}.items() if v is not None}
    settings = _or_exit(lambda: AgentSettings(**overrides))
    _or_exit(lambda: settings.kind)
    if not settings.agent_token:
        raise click.ClickException("no agent token: set AGENT_TOKEN_FILE")
    log_format = os.environ.get("AGENT_LOG_FORMAT", "auto")
    if log_format not in ("auto", "json", "console"):
        raise click.ClickException(f"AGENT_LOG_FORMAT must be auto, json or console, not {log_format!r}")
    configure_logging(os.environ.get("AGENT_LOG_LEVEL", "INFO"), [settings.agent_token], log_format)  # type: ignore[arg-type]
    resource = {"service.instance.id": settings.agent_id, "reynolds.agent.type": settings.kind}
    with (
        traced(f"agent-{settings.pool}", resource),
        contextlib.suppress(KeyboardInterrupt),  # uvicorn re-raises the SIGINT it shut down on
    ):
        uvicorn.run(build_app(settings), host=settings.agent_host, port=settings.agent_port, log_config=None)


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from reynolds.config import Settings
    from reynolds.store import Store

    async def run() -> list[str]:
        settings = Settings()
        store = await Store.connect(settings.database_url, settings.database_password, settings.database_schema)
        try:
            return await store.migrate()
        finally:
            await store.close()

    applied = _or_exit(lambda: anyio.run(run))
    click.echo("applied: " + ", ".join(applied) if applied else "database is up to date")


def _default_workspaces() -> Path:
    """As root the agents run repository commands as sandbox uids, which must be able to walk down to the
    workspaces: a home directory (often 0700) cannot hold them, so they go under /var/lib/reynolds."""
    if os.geteuid() != 0:
        return Path.home() / ".local" / "state" / "reynolds" / "workspaces"
    root = Path("/var/lib/reynolds")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    return root / "workspaces"


@main.command()
@click.option("--port", type=int, default=8080, show_default=True, help="Reynolds' port")
@click.option("--agent-port", type=int, default=8101, show_default=True, help="first agent port")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".reynolds"), show_default=True)
@click.option("--with-workbench", is_flag=True, help="also start a workbench agent (echo/sleep/fail/record)")
@click.option(
    "--projects",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help='projects root: `submit --project NAME` works on a copy of NAME under it ("." is the root itself)',
)
@click.option(
    "--workspaces",
    "workspaces_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="where task workspaces are made, outside any git repository so git in one never finds another "
    "[default: ~/.local/state/reynolds/workspaces; as root /var/lib/reynolds/workspaces]",
)
def up(
    port: int, agent_port: int, state_dir: Path, with_workbench: bool, projects: Path, workspaces_dir: Path | None
) -> None:
    """Run the whole system as local processes: Reynolds plus one replica of each agent type, against the
    configured Postgres and Redis (REYNOLDS_DATABASE_URL, REYNOLDS_REDIS_URL) — or, when none is configured
    and none answers on localhost, embedded ones with their data in the state directory. Each process's
    log lines are prefixed with its name. Ctrl-C stops everything."""
    from reynolds import embedded
    from reynolds.workers import stop_all

    for sig in (signal.SIGTERM, signal.SIGHUP):  # a kill or a closed terminal stops everything, like Ctrl-C
        signal.signal(sig, _interrupt)
    state_dir.mkdir(parents=True, exist_ok=True)
    workspaces_dir = (workspaces_dir or _default_workspaces()).resolve()
    client_token = _token_file(state_dir / "client_token")
    agent_token = _token_file(state_dir / "agent_token")
    services = _or_exit(
        lambda: embedded.ensure_services(
            state_dir, os.environ.get("REYNOLDS_DATABASE_URL"), os.environ.get("REYNOLDS_REDIS_URL")
        )
    )
    for note in services.notes:
        console.print(note)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        base_env = {
            **os.environ,
            **services.env,
            "REYNOLDS_PORT": str(port),
            "REYNOLDS_HOST": "127.0.0.1",
            "REYNOLDS_CLIENT_TOKENS_FILE": str(client_token),
            "REYNOLDS_AGENT_TOKEN_FILE": str(agent_token),
            "REYNOLDS_PROJECTS_DIR": str(projects.resolve()),
            "REYNOLDS_WORKSPACES_DIR": str(workspaces_dir),
            "WORKSPACES_DIR": str(workspaces_dir),  # the agents see task workspaces where Reynolds makes them
            "REYNOLDS_AGENT_AUTH": "shared",  # local development: one token for every agent (README, Security)
            **_local_env(),
        }
        procs.append(_start_prefixed("reynolds", [sys.executable, "-m", "reynolds", "serve"], base_env))
        kinds = ["devops", "platform", "code", *(["workbench"] if with_workbench else [])]
        for i, kind in enumerate(kinds):
            env = {**base_env, **_agent_env(kind, port, agent_port + i, agent_token, state_dir, workspaces_dir)}
            procs.append(_start_prefixed(kind, [sys.executable, "-m", "reynolds", "agent"], env))
        console.print(
            f"[bold]Reynolds[/] on http://127.0.0.1:{port}/mcp with {', '.join(kinds)} agents. "
            f"Client token: {client_token} (the CLI reads it from there). "
            f"Live task view: http://127.0.0.1:{port}/ui/ (log in with that token). Ctrl-C stops."
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        console.print("[red]a process exited; stopping the rest[/]")
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second signal must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        stop_all(procs)
        services.stop()
    sys.exit(0 if all(p.returncode in (0, -signal.SIGINT) for p in procs) else 1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _local_env() -> dict[str, str]:
    """Log format and sandbox mode for processes started by ``reynolds up``."""
    log_format = "console" if sys.stderr.isatty() else "json"
    env = {
        "REYNOLDS_LOG_FORMAT": os.environ.get("REYNOLDS_LOG_FORMAT", log_format),
        "AGENT_LOG_FORMAT": os.environ.get("AGENT_LOG_FORMAT", log_format),
    }
    if os.geteuid() != 0 and "SANDBOX_ALLOW_UNSANDBOXED" not in os.environ:
        # the agents cannot switch to a sandbox uid without root: run repository content as you, and say so
        env["SANDBOX_ALLOW_UNSANDBOXED"] = "true"
        console.print("Sandbox: not root, so commands from repositories run as you (README, Security)")
    return env


def _agent_env(kind: str, port: int, agent_port: int, token: Path, state_dir: Path, workspaces: Path) -> dict[str, str]:
    home = state_dir / kind
    # an agent's own scratch tree is entered by sandbox uids too: as root it sits beside the workspaces
    scratch = workspaces.parent / "scratch" / kind if os.geteuid() == 0 else home / "workspace"
    return {
        "AGENT_TYPE": kind,
        "AGENT_ID": f"{kind}-local",
        "AGENT_PORT": str(agent_port),
        "AGENT_HOST": "127.0.0.1",
        "AGENT_URL": f"http://127.0.0.1:{agent_port}/mcp",
        "MCP_ENDPOINT": f"http://127.0.0.1:{port}/agents/mcp",
        "AGENT_TOKEN_FILE": str(token),
        "KNOWLEDGE_DIR": str(Path(__file__).resolve().parents[1] / "agents" / kind / "knowledge"),
        "CONTEXT_DIR": str(Path("context").resolve()),
        "MEMORY_DIR": str(home / "memory"),
        "WORKSPACE_DIR": str(scratch),
    }


PREFIX_WIDTH = 9  # the longest process name (reynolds, workbench) lines up


def _start_prefixed(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a child whose output lines reach our stderr as ``name | line`` (a thread copies them)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    prefix = f"{name:>{PREFIX_WIDTH}} | ".encode()

    def copy() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.buffer.write(prefix + line)
            sys.stderr.buffer.flush()

    threading.Thread(target=copy, name=f"output-{name}", daemon=True).start()
    return proc


def _token_file(path: Path) -> Path:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.resolve()


# ---------------------------------------------------------------------- talking to Reynolds
url_option = click.option("--url", envvar="REYNOLDS_URL", default=rclient.DEFAULT_URL, show_default=True)
token_option = click.option("--token", default=None, help="client token (or REYNOLDS_TOKEN / REYNOLDS_TOKEN_FILE)")


def _run_client(url: str, token: str | None, tool: str, arguments: dict[str, Any], progress: Any = None) -> Any:
    async def run() -> Any:
        async with rclient.connect(url, rclient.resolve_token(token)) as c:
            return await rclient.call(c, tool, arguments, progress)

    return _or_exit(lambda: anyio.run(run))


@main.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--goal", default=None, help="what the task is for; planned by Reynolds when no PLAN_FILE is given")
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow progress until the task ends")
@click.option("--strategy", type=click.Choice(["parallel", "sequential", "auto"]), default="parallel")
@click.option("--priority", type=int, default=0)
@click.option("--timeout", "timeout_s", type=float, default=None, help="fail the task after this many seconds")
@click.option("--github", "track_in_github", is_flag=True, help="keep a GitHub tracking issue for the task")
@click.option(
    "--project",
    is_flag=False,
    flag_value=".",
    default=None,
    help="work on a copy of this directory under the projects root (alone: the root itself, `.`)",
)
@click.option("--git", "git_url", default=None, help="work on a clone of this repository")
@click.option("--ref", default=None, help="branch, tag or commit of --git (default: its default branch)")
@click.option("--json", "as_json", is_flag=True, help="print the task as JSON")
@url_option
@token_option
def submit(
    plan_file: Path | None,
    goal: str | None,
    wait: bool,
    strategy: str,
    priority: int,
    timeout_s: float | None,
    track_in_github: bool,
    project: str | None,
    git_url: str | None,
    ref: str | None,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """Run the plan in PLAN_FILE (JSON or YAML), or have Reynolds plan --goal first; on a copy of a project
    (--project), a clone of a repository (--git, --ref), or an empty scratch workspace."""
    if plan_file is None and not goal:
        raise click.UsageError("give a PLAN_FILE, or --goal to have Reynolds plan one")
    plan = None
    if plan_file is not None:
        try:
            plan = yaml.safe_load(plan_file.read_text())  # YAML is a superset of JSON
        except yaml.YAMLError as err:
            raise click.ClickException(f"{plan_file} is not valid JSON/YAML: {err}") from err
    args = {
        "plan": plan,
        "goal": goal,
        "wait": wait,
        "strategy": strategy,
        "priority": priority,
        "timeout_s": timeout_s,
        "track_in_github": track_in_github,
        "workspace": _workspace_spec(project, git_url, ref),
    }
    if not wait:
        task = _run_client(url, token, "orchestrate", args)
        click.echo(json.dumps(task, indent=2) if as_json else task["task_id"])
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        line = bar.add_task("running", total=None)

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            bar.update(line, completed=done, total=total, description=message or "running")

        task = _run_client(url, token, "orchestrate", args, on_progress)
    if as_json:
        click.echo(json.dumps(task, indent=2))
    else:
        _print_task(task)
    sys.exit(0 if task["state"] == "succeeded" else 1)


@main.command()
@click.argument("task_id", required=False)
@click.option("--state", type=click.Choice(["running", "succeeded", "failed", "cancelled"]), default=None)
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@url_option
@token_option
def status(task_id: str | None, state: str | None, limit: int, as_json: bool, url: str, token: str | None) -> None:
    """Show one task (TASK_ID) or the latest tasks."""
    if task_id:
        task = _run_client(url, token, "get_task", {"task_id": task_id})
        click.echo(json.dumps(task, indent=2)) if as_json else _print_task(task)
        return
    listing = _run_client(url, token, "list_tasks", {"state": state, "limit": limit})
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    table = Table("task", "state", "subtasks", "created", "goal")
    for t in listing["tasks"]:
        table.add_row(t["task_id"], _state(t["state"]), _counts(t["counts"]), t["created_at"][:19], t["goal"] or "")
    Console().print(table)


@main.command()
@click.argument("task_id")
@url_option
@token_option
def cancel(task_id: str, url: str, token: str | None) -> None:
    """Cancel a running task."""
    _print_task(_run_client(url, token, "cancel_task", {"task_id": task_id}))


@main.command()
@click.argument("pool")
@click.argument("replicas", type=click.IntRange(0, 50))
@url_option
@token_option
def scale(pool: str, replicas: int, url: str, token: str | None) -> None:
    """Set POOL to REPLICAS replicas (Reynolds needs the Docker socket)."""
    result = _run_client(url, token, "scale_pool", {"pool": pool, "replicas": replicas})
    click.echo(result["message"])


@main.command()
@click.option("--json", "as_json", is_flag=True)
@url_option
@token_option
def agents(as_json: bool, url: str, token: str | None) -> None:
    """List pools, replicas, health and tools."""
    view = _run_client(url, token, "list_agents", {})
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    table = Table("pool", "replica", "healthy", "circuit", "load", "tools")
    for pool in view["pools"]:
        for r in pool["replicas"] or [None]:
            if r is None:
                table.add_row(pool["pool"], "-", "-", "-", "-", f"(no replicas; {pool['queue_depth']} queued)")
                continue
            table.add_row(
                pool["pool"],
                r["agent_id"],
                "yes" if r["healthy"] else "[red]no[/]",
                r["circuit"],
                f"{r['inflight']}/{r['max_concurrency']}",
                str(len(r["tools"])),
            )
    Console().print(table)


def _workspace_spec(project: str | None, git_url: str | None, ref: str | None) -> dict[str, str] | None:
    if project is not None and git_url:
        raise click.UsageError("--project or --git, not both")
    if ref and not git_url:
        raise click.UsageError("--ref goes with --git")
    if git_url:
        return {"git": git_url, **({"ref": ref} if ref else {})}
    return {"project": Path(project).as_posix()} if project is not None else None


@main.command()
@click.argument("task_id")
@click.argument("path", required=False)
@click.option("--diff", "show_diff", is_flag=True, help="print the task's changes as a unified diff")
@url_option
@token_option
def workspace(task_id: str, path: str | None, show_diff: bool, url: str, token: str | None) -> None:
    """Show TASK_ID's workspace: its source, commit and changed files; with --diff its changes as a unified diff
    (ready for `git apply`); with PATH one file of it."""
    if path is not None:
        found = json.loads(_read_resource(url, token, f"reynolds://tasks/{task_id}/workspace/{path}"))
        if found.get("text") is not None:
            click.echo(found["text"], nl=False)
        else:
            sys.stdout.buffer.write(base64.b64decode(found["base64"]))
        return
    tree = _run_client(url, token, "get_task", {"task_id": task_id}).get("workspace")
    if tree is None:
        raise click.ClickException(f"task {task_id} has no workspace record")
    changes = tree.get("changes")
    if show_diff:
        if changes is None:
            raise click.ClickException("the task is still running: its changes are shown once it ends")
        click.echo(changes["diff"], nl=False)
        if changes["truncated"]:
            console.print(f"[yellow]diff cut at {len(changes['diff'].encode())} of {changes['diff_bytes']} bytes[/]")
        return
    _print_workspace(Console(), tree)
    for name in (changes or {}).get("files", []):
        click.echo(f"  {name}")


def _read_resource(url: str, token: str | None, uri: str) -> str:
    async def run() -> str:
        async with rclient.connect(url, rclient.resolve_token(token)) as c:
            try:
                result = await c.read_resource(uri)
            except Exception as err:  # the SDK raises its own error type for a JSON-RPC error answer
                raise errors.ReynoldsError(str(err)) from err
            return getattr(result.contents[0], "text", "")

    return _or_exit(lambda: anyio.run(run))


def _print_workspace(out: Console, tree: dict[str, Any]) -> None:
    source = tree["source"] + (f" {tree['location']}" if tree.get("location") else "")
    commit = f" @ {tree['commit'][:12]}" if tree.get("commit") else ""
    changes = tree.get("changes")
    changed = f", {len(changes['files'])} file(s) changed" if changes else ""
    out.print(f"workspace: {source}{commit} in {tree['path']} ({tree['size_bytes']} bytes{changed})")


def _print_task(task: dict[str, Any]) -> None:
    out = Console()
    out.print(f"[bold]{task['task_id']}[/] {_state(task['state'])}  {_counts(task.get('counts', {}))}")
    planning = task.get("planning") or {}
    if planning.get("planner", "client") != "client":
        notes = "; ".join(planning.get("notes", []))
        out.print(f"planned by the {planning['planner']}" + (f" ({notes})" if notes else ""))
    if task.get("github_issue"):
        out.print(f"tracked in GitHub issue #{task['github_issue']}")
    if task.get("workspace"):
        _print_workspace(out, task["workspace"])
    rows = []
    for s in task.get("subtasks", []):
        seconds = f"{s['duration_s']:.2f}" if s.get("duration_s") is not None else ""
        rows.append([s["id"], s["tool"], s["pool"], s["state"], str(s["attempts"]), s.get("agent_id") or "", seconds])
    names = ("subtask", "tool", "pool", "state", "tries", "agent", "seconds")
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    room = out.width - sum(widths) - 3 * (len(names) + 1) - 1
    if room < 16:  # a narrow terminal: one block per subtask instead of a table squeezed to nothing
        for row, s in zip(rows, task.get("subtasks", []), strict=True):
            tries = f"{row[4]} {'try' if row[4] == '1' else 'tries'}"
            out.print(f"{_state(row[3])} [bold]{row[0]}[/] {row[1]} on {row[5] or row[2]}, {tries}, {row[6] or '-'} s")
            out.print(f"    {_outcome(s)}", overflow="ellipsis", no_wrap=True)
        if task.get("message"):
            out.print(task["message"])
        return
    table = Table()
    for name, width in zip(names, widths, strict=True):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column("result / error", overflow="ellipsis", no_wrap=True, max_width=max(16, min(room, 60)))
    for row, s in zip(rows, task.get("subtasks", []), strict=True):
        table.add_row(*row[:3], _state(row[3]), *row[4:], _outcome(s))
    out.print(table)
    if task.get("message"):
        out.print(task["message"])


def _outcome(subtask: dict[str, Any]) -> str:
    """The error, or the result's own summary when it has one, else the result as compact JSON."""
    if subtask.get("error"):
        return str(subtask["error"])
    result = subtask.get("result")
    if isinstance(result, dict) and isinstance(result.get("summary"), str):
        return result["summary"]
    return json.dumps(result, separators=(",", ":")) if result is not None else ""


def _state(state: str) -> str:
    colour = STATE_COLOURS.get(state)
    return f"[{colour}]{state}[/]" if colour else state


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def _or_exit(fn: Any) -> Any:
    """Run ``fn``; a Reynolds error becomes a one-line message and exit code 1, not a traceback."""
    try:
        return fn()
    except errors.ReynoldsError as err:
        raise click.ClickException(str(err)) from err
    except BaseExceptionGroup as group:
        first = _innermost(group)
        if isinstance(first, errors.ReynoldsError):
            raise click.ClickException(str(first)) from group
        if "Server returned an error response" in str(first):  # how the SDK reports a 401 while connecting
            raise click.ClickException("Reynolds refused the connection: wrong or missing client token?") from group
        raise click.ClickException(f"{type(first).__name__}: {first}") from group
    except (OSError, ValueError) as err:  # unreadable secret files, invalid settings (pydantic errors are ValueErrors)
        raise click.ClickException(str(err)) from err


def _innermost(err: BaseException) -> BaseException:
    while isinstance(err, BaseExceptionGroup):
        err = err.exceptions[0]
    return err


main.add_command(experiment_group(url_option, token_option, _run_client))  # experiments: `reynolds experiment`
