"""The MCP App ``ui://reynolds/task``: advertised on orchestrate/get_task, served as an MCP Apps resource, and
rendered in headless Chromium inside a sandboxed iframe by a minimal host that speaks the Apps postMessage
protocol and forwards the app's ``tools/call`` to the real Reynolds over MCP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from reynolds.client import call
from reynolds.ui import TASK_APP_URI
from tests.integration.cluster import Cluster, Proc
from tests.ui.conftest import chromium_page
from tests.ui.test_task_view import HOSTILE

pytestmark = pytest.mark.anyio

# The host: renders the app in a sandboxed iframe (as Apps hosts do), answers ui/initialize, sends the tool
# result once the app says it is initialized, and passes tools/call to Python (window.callTool).
HOST = """<!doctype html><meta charset="utf-8">
<iframe id="app" sandbox="allow-scripts" width="1080" height="860"></iframe>
<script>
const frame = document.getElementById("app");
const send = (message) => frame.contentWindow.postMessage({ jsonrpc: "2.0", ...message }, "*");
window.addEventListener("message", async (event) => {
  const m = event.data;
  if (m.method === "ui/initialize")
    send({ id: m.id, result: { protocolVersion: m.params.protocolVersion, hostInfo: { name: "test-host" } } });
  else if (m.method === "ui/notifications/initialized")
    send({ method: "ui/notifications/tool-result", params: window.toolResult });
  else if (m.method === "tools/call")
    send({ id: m.id, result: JSON.parse(await window.callTool(JSON.stringify(m.params))) });
});
window.startApp = (html, toolResult) => { window.toolResult = toolResult; frame.srcdoc = html; };
</script>"""


async def test_orchestrate_and_get_task_carry_the_task_app(ui_cluster: tuple[Cluster, Proc]) -> None:
    c, _ = ui_cluster
    async with c.client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        resource = (await client.read_resource(TASK_APP_URI)).contents[0]
    for name in ("orchestrate", "get_task"):
        assert (tools[name].meta or {}).get("ui") == {"resourceUri": TASK_APP_URI}
    assert "ui" not in (tools["list_tasks"].meta or {})
    assert resource.mime_type == "text/html;profile=mcp-app"
    assert "<script>" in resource.text and "/ui/app.js" not in resource.text  # self-contained


async def test_task_app_renders_a_live_task_in_a_host_iframe(
    ui_cluster: tuple[Cluster, Proc], screenshots: Path
) -> None:
    c, _ = ui_cluster
    plan = {
        "subtasks": [
            {"id": "hostile", "tool": "echo", "arguments": {"value": HOSTILE}},
            {"id": "nap", "tool": "sleep", "arguments": {"seconds": 2}, "depends_on": ["hostile"]},
        ]
    }
    async with c.client() as client, chromium_page() as page:
        html = (await client.read_resource(TASK_APP_URI)).contents[0].text
        first = await client.call_tool("orchestrate", {"plan": plan, "goal": HOSTILE, "wait": False})
        calls: list[str] = []

        async def call_tool(params: str) -> str:
            request = json.loads(params)
            calls.append(request["name"])
            result = await client.call_tool(request["name"], request["arguments"])
            return result.model_dump_json(by_alias=True, exclude_none=True)

        await page.expose_function("callTool", call_tool)
        await page.set_content(HOST)
        tool_result: dict[str, Any] = first.model_dump(mode="json", by_alias=True, exclude_none=True)
        await page.evaluate("([html, result]) => window.startApp(html, result)", [html, tool_result])
        app = page.frame_locator("#app")

        await expect(app.locator("#task-state")).to_have_attribute("data-state", "succeeded", timeout=60_000)
        await expect(app.locator('#dag .dag-node[data-id="nap"]')).to_have_attribute("data-state", "succeeded")
        await expect(app.locator('#gantt .gantt-bar[data-id="nap"]')).to_have_attribute("data-state", "succeeded")
        await expect(app.locator("#goal")).to_have_text(HOSTILE)
        await page.screenshot(path=screenshots / "task-app.png", full_page=True)

        assert calls and set(calls) == {"get_task"}  # the app followed the task through the host
        assert await app.locator("#changes").count() == 0  # its scratch workspace changed nothing: no section
        assert await app.locator("main img, main script, [onerror], [onload]").count() == 0
        assert await page.frames[1].evaluate("window.__pwned") is None
        assert await page.evaluate("window.__pwned") is None
    view = await call_view(c, first.structured_content["task_id"])
    assert view["state"] == "succeeded"


async def test_task_app_shows_the_workspace_diff_when_the_view_carries_one(
    ui_cluster: tuple[Cluster, Proc], screenshots: Path
) -> None:
    """``workspace.changes`` is another helper's addition to TaskView: a finished view from the real cluster
    is given one, with hostile text in the diff, as the host would pass it."""
    c, _ = ui_cluster
    plan = {"subtasks": [{"id": "edit", "tool": "echo", "arguments": {"value": "x"}}]}
    async with c.client() as client, chromium_page() as page:
        html = (await client.read_resource(TASK_APP_URI)).contents[0].text
        view = await call(client, "orchestrate", {"plan": plan})
        diff = f"--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-old = 1\n+new = '{HOSTILE}'\n"
        view["workspace"] = {"changes": {"commit": "abc123", "files": ["app.py"], "diff": diff}}
        await page.set_content(HOST)
        await page.evaluate("([html, view]) => window.startApp(html, {structuredContent: view})", [html, view])
        changes = page.frame_locator("#app").locator("#changes")
        await expect(changes.locator(".diff .add")).to_have_text(["+++ b/app.py", f"+new = '{HOSTILE}'"])
        await expect(changes.locator(".diff .del")).to_have_text(["--- a/app.py", "-old = 1"])
        await expect(changes.locator("pre").first).to_contain_text('"commit": "abc123"')
        await page.screenshot(path=screenshots / "task-app-diff.png", full_page=True)
        assert await page.frame_locator("#app").locator("main img, main script, [onerror], [onload]").count() == 0


async def call_view(c: Cluster, task_id: str) -> dict[str, Any]:
    async with c.client() as client:
        return await call(client, "get_task", {"task_id": task_id})
