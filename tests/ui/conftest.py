"""Browser fixtures: a real cluster (Reynolds + two workbench agents as processes, real Postgres/Redis) and
real headless Chromium — Debian's ``chromium`` package, driven by Playwright (never a downloaded browser).

Chromium missing is a failure, not a skip: the README's set-up line installs it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.integration.cluster import Cluster, Proc, cluster

CHROMIUM = os.environ.get("REYNOLDS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def ui_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Proc]]:
    with cluster(tmp_path_factory.mktemp("ui") / "cluster") as c:
        reynolds = c.start_reynolds()
        agents = [c.start_agent("workbench", reynolds=reynolds) for _ in range(2)]
        c.wait_registered([a.name for a in agents])
        yield c, reynolds


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: ``REYNOLDS_UI_SCREENSHOTS`` (CI keeps it as an artefact) or the test's tmp dir."""
    folder = Path(os.environ.get("REYNOLDS_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A fresh page in headless Chromium that fails the test on any script error in the page."""
    if not CHROMIUM:
        pytest.fail("no chromium on PATH: install it with the README's set-up line (apt-get install -y chromium)")
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("pageerror", lambda err: errors.append(str(err)))
            yield page
        finally:
            await browser.close()
    assert not errors, f"script errors in the page: {errors}"


async def log_in(page: Page, reynolds: Proc, token: str) -> None:
    await page.goto(f"{reynolds.base_url}/ui/")
    await page.fill("#token", token)
    await page.click("#login button")
