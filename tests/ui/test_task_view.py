"""The live task view at /ui in headless Chromium against a real cluster: a task watched from running to
done, the task list and agents pages, hostile text shown as text, and a wrong token refused."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from playwright.async_api import expect

from reynolds.client import call
from tests.integration.cluster import Cluster, Proc
from tests.integration.conftest import wait_task
from tests.ui.conftest import chromium_page, log_in

pytestmark = pytest.mark.anyio
SLOW_S = 8  # long enough for a 1 s poll to see it running, however loaded the machine

DIAMOND = {
    "subtasks": [
        {"id": "start", "tool": "echo", "arguments": {"value": "go"}},
        {"id": "slow", "tool": "sleep", "arguments": {"seconds": SLOW_S}, "depends_on": ["start"]},
        {"id": "side", "tool": "echo", "arguments": {"value": {"$from": "start"}}, "depends_on": ["start"]},
        {"id": "end", "tool": "echo", "arguments": {"value": "done"}, "depends_on": ["slow", "side"]},
    ]
}
HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=1"><svg onload="window.__pwned=1">'


async def test_live_view_follows_a_task_from_running_to_done(
    ui_cluster: tuple[Cluster, Proc], screenshots: Path
) -> None:
    c, reynolds = ui_cluster
    async with chromium_page() as page:
        await log_in(page, reynolds, c.client_token)
        await expect(page.locator("#tasks")).to_be_visible()
        async with c.client() as client:
            task_id = (await call(client, "orchestrate", {"plan": DIAMOND, "wait": False}))["task_id"]
            await page.evaluate("id => { location.hash = '#/task/' + id }", task_id)

            await expect(page.locator('#dag .dag-node[data-id="slow"][data-state="running"]')).to_be_visible(
                timeout=SLOW_S * 1000
            )
            await expect(page.locator('#gantt .gantt-bar[data-id="slow"][data-state="running"]')).to_be_visible()
            await expect(page.locator("#task-state")).to_have_attribute("data-state", "running")
            await page.screenshot(path=screenshots / "task-running.png", full_page=True)

            await expect(page.locator("#task-state")).to_have_attribute("data-state", "succeeded", timeout=60_000)
            view = await wait_task(client, task_id)
        await page.screenshot(path=screenshots / "task-done.png", full_page=True)

        assert view["state"] == "succeeded"
        for sub in view["subtasks"]:
            node = page.locator(f'#dag .dag-node[data-id="{sub["id"]}"]')
            await expect(node).to_have_attribute("data-state", "succeeded")
            await expect(page.locator(f'#gantt .gantt-bar[data-id="{sub["id"]}"]')).to_have_attribute(
                "data-state", "succeeded"
            )
        assert await page.locator("#dag .edge").count() == 4
        lanes = sorted({s["agent_id"] for s in view["subtasks"]})
        assert await page.locator("#gantt .lane").all_text_contents() == lanes
        details = page.locator('details.subtask[data-id="side"]')
        await details.locator("summary").click()
        await expect(details.locator("pre").last).to_contain_text('"value": "go"')  # its result, from $from

        await page.click('#nav a[href="#/tasks"]')
        await expect(page.locator(f'#tasks tr[data-id="{task_id}"] .badge')).to_have_text("succeeded")
        await page.click('#nav a[href="#/agents"]')
        await expect(page.locator("tr.replica")).to_have_count(2)
        await page.screenshot(path=screenshots / "agents.png", full_page=True)


async def test_hostile_text_is_shown_as_text_and_never_runs(
    ui_cluster: tuple[Cluster, Proc], screenshots: Path
) -> None:
    c, reynolds = ui_cluster
    plan = {
        "subtasks": [
            {"id": "echoed", "tool": "echo", "arguments": {"value": {HOSTILE: HOSTILE}}},
            {"id": "failed", "tool": "fail", "arguments": {"message": HOSTILE}, "max_attempts": 1},
        ]
    }
    async with c.client() as client:
        task_id = (await call(client, "orchestrate", {"plan": plan, "goal": HOSTILE, "wait": False}))["task_id"]
        view = await wait_task(client, task_id)
    assert view["state"] == "failed"
    async with chromium_page() as page:
        await log_in(page, reynolds, c.client_token)
        await page.evaluate("id => { location.hash = '#/task/' + id }", task_id)
        await expect(page.locator("#task-state")).to_have_attribute("data-state", "failed")
        for details in await page.locator("details.subtask").all():
            await details.locator("summary").click()
        await expect(page.locator("#goal")).to_have_text(HOSTILE)
        await expect(page.locator('details[data-id="failed"] pre.error')).to_contain_text(HOSTILE)
        await expect(page.locator('details[data-id="echoed"] pre').last).to_contain_text("<img src=x onerror=")
        await page.screenshot(path=screenshots / "hostile.png", full_page=True)

        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("main img, main script, [onerror], [onload]").count() == 0
        await page.click('#nav a[href="#/tasks"]')
        await expect(page.locator(f'#tasks tr[data-id="{task_id}"] td').nth(2)).to_have_text(HOSTILE)
        assert await page.evaluate("window.__pwned") is None


async def test_a_wrong_token_is_refused(ui_cluster: tuple[Cluster, Proc]) -> None:
    c, reynolds = ui_cluster
    async with chromium_page() as page:
        await log_in(page, reynolds, "not-the-token")
        await expect(page.locator("#login-error")).to_have_text("That token was refused.")
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#main")).to_be_empty()
        assert await page.evaluate("sessionStorage.length") == 0
    async with httpx2.AsyncClient(base_url=reynolds.base_url) as http:
        assert (await http.get("/ui/api/tasks")).status_code == 401
        assert (await http.get("/ui/api/agents", headers={"Authorization": "Bearer nope"})).status_code == 401
        good = {"Authorization": f"Bearer {c.client_token}"}
        assert (await http.get("/ui/api/tasks", headers=good)).status_code == 200
        assert (await http.get("/ui/api/tasks/not-a-uuid", headers=good)).status_code == 400
        assert (await http.get("/ui/api/tasks?state=bogus", headers=good)).status_code == 400
        missing = await http.get("/ui/api/tasks/00000000-0000-0000-0000-000000000000", headers=good)
        assert missing.status_code == 404, missing.text
        page = await http.get("/ui/")  # the page itself carries no data: no token needed
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
