"""The task view's page and MCP App resource, as built (the browser tests in tests/ui/ drive them)."""

from __future__ import annotations

import re

from mcp.server.apps import APP_MIME_TYPE

from reynolds import ui


def test_the_browser_page_links_its_own_files_only() -> None:
    html = ui.page(inline=False)
    assert ui.LINKED_STYLE in html and ui.LINKED_SCRIPT in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from another origin


def test_the_app_resource_is_one_self_contained_document() -> None:
    html = ui.page(inline=True)
    assert "/ui/app.js" not in html and "/ui/app.css" not in html
    assert html.index("<main") < html.index("<script>")  # the script runs once the DOM it fills exists
    assert "innerHTML" not in html and "outerHTML" not in html and "insertAdjacentHTML" not in html
    (resource,) = ui.task_app().resources()
    assert resource.resource.uri == ui.TASK_APP_URI and resource.resource.mime_type == APP_MIME_TYPE
