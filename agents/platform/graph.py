"""Microsoft Graph over HTTP (httpx2): a client-credentials token from the login endpoint, cached until
shortly before it expires, and GET requests with paging. Every failure becomes a ToolError that says
what Graph answered and what to do about it; the client secret never appears in a message."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2

from agents.platform.settings import GraphCredentials, PlatformSettings
from agents.runtime.errors import ToolError

TOKEN_EARLY_REFRESH_S = 120  # renew before expiry so a long page walk does not fail half-way
MAX_PAGES = 50


class GraphClient:
    """Calls Graph for one agent; holds only the token cache."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    async def get(
        self,
        settings: PlatformSettings,
        creds: GraphCredentials,
        path: str,
        permission: str,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """GET ``path`` (relative to GRAPH_BASE_URL); ``permission`` names what a 403 means is missing."""
        url = settings.graph_base_url.rstrip("/") + path
        async with self._client(settings) as client:
            return await self._get(client, settings, creds, url, params, permission)

    async def get_all(
        self,
        settings: PlatformSettings,
        creds: GraphCredentials,
        path: str,
        permission: str,
        params: dict[str, str],
        limit: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Follow ``@odata.nextLink`` until ``limit`` items; returns (items, more_available)."""
        base = settings.graph_base_url.rstrip("/")
        url: str | None = base + path
        items: list[dict[str, Any]] = []
        async with self._client(settings) as client:
            for _page in range(MAX_PAGES):
                assert url is not None
                body = await self._get(client, settings, creds, url, params, permission)
                items.extend(body.get("value", []))
                url, params = body.get("@odata.nextLink"), None
                if not url or len(items) >= limit:
                    break
                if not url.startswith(base + "/"):
                    # never send the token to a host other than the configured Graph
                    raise ToolError(f"Graph returned a next page outside {base}; refusing to follow it")
        return items[:limit], bool(url) or len(items) > limit

    def _client(self, settings: PlatformSettings) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(timeout=settings.graph_timeout_s, headers={"Accept": "application/json"})

    async def _get(
        self,
        client: httpx2.AsyncClient,
        settings: PlatformSettings,
        creds: GraphCredentials,
        url: str,
        params: dict[str, str] | None,
        permission: str,
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            token = await self._token(client, settings, creds)
            try:
                response = await client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
            except httpx2.HTTPError as err:
                raise ToolError(f"cannot reach Microsoft Graph at {settings.graph_base_url}: {err}") from err
            if response.status_code == 401 and attempt == 1:
                self._forget(settings, creds)  # revoked or rotated: sign in once more
                continue
            return _graph_body(response, _path_of(url, settings), permission)
        raise AssertionError("unreachable")

    def _key(self, settings: PlatformSettings, creds: GraphCredentials) -> tuple[str, str, str, str]:
        return settings.graph_login_base_url, creds.tenant_id, creds.client_id, creds.client_secret

    def _forget(self, settings: PlatformSettings, creds: GraphCredentials) -> None:
        self._tokens.pop(self._key(settings, creds), None)

    async def _token(self, client: httpx2.AsyncClient, settings: PlatformSettings, creds: GraphCredentials) -> str:
        key = self._key(settings, creds)
        cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        url = f"{settings.graph_login_base_url.rstrip('/')}/{quote(creds.tenant_id, safe='')}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "scope": f"{graph_resource(settings.graph_base_url)}/.default",
        }
        try:
            response = await client.post(url, data=form)
        except httpx2.HTTPError as err:
            raise ToolError(
                f"cannot reach the Microsoft sign-in endpoint {settings.graph_login_base_url}: {err}"
            ) from err
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            code = body.get("error", f"HTTP {response.status_code}")
            detail = str(body.get("error_description", "")).splitlines()[0:1]
            raise ToolError(
                f"Microsoft Graph sign-in failed for client {creds.client_id} in tenant {creds.tenant_id}: {code}"
                + (f" - {detail[0]}" if detail else "")
                + " (check client_id/client_secret in M365_CREDENTIALS_FILE and TENANT_ID_FILE)"
            )
        lifetime = float(body.get("expires_in", 3599))
        self._tokens[key] = (body["access_token"], time.monotonic() + max(lifetime - TOKEN_EARLY_REFRESH_S, 0))
        return body["access_token"]


def graph_resource(base_url: str) -> str:
    """``https://graph.microsoft.com/v1.0`` -> ``https://graph.microsoft.com`` (the token's audience)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def _path_of(url: str, settings: PlatformSettings) -> str:
    return url[len(settings.graph_base_url.rstrip("/")) :] or "/"


def _json(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _graph_body(response: httpx2.Response, path: str, permission: str) -> dict[str, Any]:
    if response.status_code == 200:
        body = _json(response)
        if not body:
            raise ToolError(f"Microsoft Graph answered GET {path} with a body that is not a JSON object")
        return body
    error = _json(response).get("error") or {}
    code = error.get("code", "") if isinstance(error, dict) else ""
    message = error.get("message", "") if isinstance(error, dict) else ""
    said = f"({response.status_code}{' ' + code if code else ''}){': ' + message if message else ''}"
    status = response.status_code
    if status == 403:
        raise ToolError(
            f"Microsoft Graph denied GET {path} {said}. The app registration needs the application permission "
            f"{permission} with admin consent"
        )
    if status == 404:
        raise ToolError(f"Microsoft Graph found nothing at GET {path} {said}")
    if status == 401:
        raise ToolError(f"Microsoft Graph rejected the access token for GET {path} {said}")
    if status in (429, 503):
        retry = response.headers.get("Retry-After")
        raise ToolError(
            f"Microsoft Graph is throttling GET {path} {said}" + (f"; retry after {retry} s" if retry else "")
        )
    raise ToolError(f"Microsoft Graph failed GET {path} {said}")
