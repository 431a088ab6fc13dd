"""The live task view: one page at ``/ui`` (task list, a task's DAG, Gantt timeline, results and diff, the
agents) and the same page as the MCP App resource ``ui://reynolds/task`` bound to ``orchestrate`` and
``get_task``.

The page and its script carry no data, so they are served without a token; the JSON under ``/ui/api/`` is
behind the client token (``BearerAuth`` rule ``/ui/api``) and comes from the same engine calls the MCP tools
make. In a browser the page asks for the token once and keeps it in ``sessionStorage``; inside an MCP Apps
host it gets the tool result from the host and polls ``get_task`` through it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.apps import Apps
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from reynolds import errors
from reynolds.auth import Principal, allowed, caller_in
from reynolds.models import TaskState

if TYPE_CHECKING:
    from reynolds.models import AgentsView
    from reynolds.server import Holder
    from reynolds.service import Service

TASK_APP_URI = "ui://reynolds/task"
TASK_APP_META: dict[str, Any] = {"ui": {"resourceUri": TASK_APP_URI}}  # stamped on orchestrate and get_task
STATIC = Path(__file__).with_name("ui")
API_PREFIX = "/ui/api"  # the token-protected part
# The page runs only its own script and style and talks only to this origin.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store"}
LINKED_STYLE = '<link rel="stylesheet" href="/ui/app.css">'
LINKED_SCRIPT = '<script src="/ui/app.js"></script>'


def page(inline: bool) -> str:
    """The one HTML document: linked to ``/ui/app.{css,js}`` for the browser, or self-contained (what an
    MCP Apps host renders in its sandboxed iframe, which cannot fetch relative files)."""
    if inline:
        style = f"<style>\n{(STATIC / 'app.css').read_text()}</style>"
        script = f"<script>\n{(STATIC / 'app.js').read_text()}</script>"
    else:
        style, script = LINKED_STYLE, LINKED_SCRIPT
    html = (STATIC / "index.html").read_text()
    return html.replace("<!-- style -->", style).replace("<!-- script -->", script)


def task_app() -> Apps:
    """The MCP Apps extension carrying the task view (pass it to ``MCPServer(extensions=[...])``; the tools
    that render it carry ``meta=TASK_APP_META``). Clients without MCP Apps keep the tools' text result."""
    apps = Apps()
    apps.add_html_resource(
        TASK_APP_URI,
        page(inline=True),
        name="reynolds-task",
        title="Reynolds task",
        description="A task's DAG by state, a Gantt timeline on replica lanes, results and diff, live.",
        prefers_border=True,
    )
    return apps


def routes(
    holder: Holder,
    agents_view: Callable[[Service], Awaitable[AgentsView]],
    own_task: Callable[[Service, Principal, str], Awaitable[None]],
) -> Mount:
    """``Mount("/ui", ...)`` for ``build_app``: the page, its two static files and the JSON API. ``agents_view``
    and ``own_task`` are what ``list_agents`` answers with and how the task tools check a caller's access
    (they live in server.py, which imports this module): the page sees exactly what its token may."""

    def json_of(read: Callable[[Request], Awaitable[BaseModel]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                view = await read(request)
            except errors.ReynoldsError as err:
                return JSONResponse({"error": str(err)}, status_code=_status(err))
            return Response(view.model_dump_json(), media_type="application/json", headers=NO_STORE)

        return endpoint

    async def task(request: Request) -> BaseModel:
        service, task_id = holder.get(), request.path_params["task_id"]
        await own_task(service, allowed(caller_in(request.scope), "read"), task_id)
        return await service.engine.get_task(task_id)

    async def tasks(request: Request) -> BaseModel:
        state = request.query_params.get("state") or None
        if state is not None and state not in set(TaskState):
            raise errors.InvalidRequest(f"unknown state {state!r}")
        limit = _bounded(request.query_params.get("limit"), 50, 1, 200)
        offset = _bounded(request.query_params.get("offset"), 0, 0, 1_000_000)
        principal = allowed(caller_in(request.scope), "read")
        submitter = None if principal.allows("admin") else principal.name
        return await holder.get().engine.list_tasks(state, limit, offset, submitter)

    async def agents(request: Request) -> BaseModel:
        allowed(caller_in(request.scope), "read")
        return await agents_view(holder.get())

    async def index(request: Request) -> Response:
        return Response(page(inline=False), media_type="text/html", headers={**NO_STORE, **PAGE_HEADERS})

    def static(name: str, media_type: str) -> Route:
        async def serve(request: Request) -> Response:
            return Response((STATIC / name).read_text(), media_type=media_type, headers=PAGE_HEADERS)

        return Route(f"/{name}", serve)

    return Mount(
        "/ui",
        routes=[
            Route("/", index),
            static("app.js", "text/javascript"),
            static("app.css", "text/css"),
            Route("/api/tasks", json_of(tasks)),
            Route("/api/tasks/{task_id}", json_of(task)),
            Route("/api/agents", json_of(agents)),
        ],
    )


def _status(err: errors.ReynoldsError) -> int:
    if isinstance(err, errors.NotFound):
        return 404
    if isinstance(err, errors.Forbidden):
        return 403
    if isinstance(err, errors.ServiceUnavailable):
        return 503
    return 400


def _bounded(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise errors.InvalidRequest(f"not a number: {raw!r}") from None
    return min(max(value, low), high)
