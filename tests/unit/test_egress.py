"""Registered agent URLs: every address the host resolves to must be inside the networks; http is pinned."""

from __future__ import annotations

import pytest

from reynolds.egress import checked_url
from reynolds.errors import UrlRefused

pytestmark = pytest.mark.anyio
LOCAL = ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]


async def test_an_address_inside_the_networks_passes_unchanged() -> None:
    assert await checked_url("http://10.1.2.3:8080/mcp", LOCAL) == "http://10.1.2.3:8080/mcp"
    assert await checked_url("http://[::1]:9/mcp?x=1", LOCAL) == "http://[::1]:9/mcp?x=1"


async def test_an_http_name_is_pinned_to_the_address_that_was_checked() -> None:
    pinned = await checked_url("http://localhost:8080/mcp", LOCAL)
    assert pinned in ("http://127.0.0.1:8080/mcp", "http://[::1]:8080/mcp")


async def test_https_keeps_its_name_for_the_certificate() -> None:
    assert await checked_url("https://localhost/mcp", LOCAL) == "https://localhost/mcp"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "resolves to 169.254.169.254, outside REYNOLDS_AGENT_NETWORKS"),
        ("http://8.8.8.8/mcp", "outside REYNOLDS_AGENT_NETWORKS"),
        ("http://[::ffff:169.254.169.254]/mcp", "resolves to 169.254.169.254"),  # mapped IPv6 read as IPv4
        ("http://no-such-host.invalid/mcp", "does not resolve"),
        ("http://user:pw@10.0.0.1/mcp", "without credentials"),
        ("ftp://10.0.0.1/mcp", "must be http(s)"),
        ("http://10.0.0.1:99999/mcp", "invalid port"),
    ],
)
async def test_anything_else_is_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        await checked_url(url, LOCAL)
    assert why in str(refused.value)
