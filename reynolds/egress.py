"""Where Reynolds may connect on an agent's say-so: a registered URL must resolve only into the configured
networks (``REYNOLDS_AGENT_NETWORKS``), so a registration cannot point Reynolds at a metadata service, a
database or the internet.

DNS rebinding (a name that resolves inside the networks at the check and elsewhere at the connect) is
closed by pinning: an ``http`` URL is stored with the checked address in place of the name, so every later
connection goes exactly where the check looked. An ``https`` URL keeps its name, because the certificate
must match it; the TLS handshake then refuses a host that cannot prove that name.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from urllib.parse import urlsplit, urlunsplit

import anyio

from reynolds.errors import UrlRefused

Address = IPv4Address | IPv6Address


async def checked_url(url: str, networks: Sequence[str]) -> str:
    """``url`` once every address its host resolves to is inside ``networks`` (pinned for http, see above);
    UrlRefused, naming the first address outside, otherwise."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise UrlRefused("agent URL must be http(s)://host[:port]/path without credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as err:
        raise UrlRefused("agent URL has an invalid port") from err
    addresses = await resolve(host, port)
    allowed = [ip_network(n, strict=False) for n in networks]
    for address in addresses:
        if not any(address in net for net in allowed):
            raise UrlRefused(f"agent URL host {host!r} resolves to {address}, outside REYNOLDS_AGENT_NETWORKS")
    if parts.scheme == "https":
        return url
    pinned = f"[{addresses[0]}]" if addresses[0].version == 6 else str(addresses[0])
    return urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path, parts.query, ""))


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to, in the resolver's order (IPv4-mapped IPv6 read as IPv4)."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    except (OSError, ValueError) as err:
        raise UrlRefused(f"agent URL host {host!r} does not resolve") from err
    unmapped = [a.ipv4_mapped if isinstance(a, IPv6Address) and a.ipv4_mapped else a for a in found]
    if not unmapped:
        raise UrlRefused(f"agent URL host {host!r} does not resolve")
    return list(dict.fromkeys(unmapped))
