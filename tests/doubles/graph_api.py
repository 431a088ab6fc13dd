"""Test double of Microsoft Graph and its sign-in endpoint: a real HTTP server on 127.0.0.1 that the
platform agent reaches with httpx2 through GRAPH_LOGIN_BASE_URL and GRAPH_BASE_URL.

Sign-in: ``POST /login/{tenant}/oauth2/v2.0/token`` with the client-credentials form. It answers a fresh
opaque token when tenant, client id and secret match, the grant type is client_credentials and the scope
is ``<this server's origin>/.default``; otherwise 400/401 with an Entra-style ``error`` body (AADSTS codes).

Graph (``/v1.0``): ``GET /teams`` (with ``$top`` paging through ``@odata.nextLink`` and a
``startswith(displayName,'...')`` filter), ``GET /sites?search=``, ``GET /users/{id or upn}``. Each
checks the bearer token is one this server issued (401 otherwise). Tests steer failures with
``forbidden`` (paths answered 403 Authorization_RequestDenied), ``throttled`` (paths answered 429 with
Retry-After: 7) and ``revoke_tokens()``. Every request
is recorded in ``requests`` as (method, path) for assertions.
"""

from __future__ import annotations

import json
import re
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.doubles.local_server import LocalHTTPServer

STARTSWITH = re.compile(r"^startswith\(displayName,'((?:[^']|'')*)'\)$")


class GraphDouble(LocalHTTPServer):
    """``with GraphDouble() as graph:``; ``graph.login_base_url`` / ``graph.graph_base_url`` go in settings."""

    def __init__(self, tenant: str = "contoso-tenant", client_id: str = "app-1", client_secret: str = "s3cret"):
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.teams: list[dict[str, Any]] = []
        self.sites: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = []
        self.forbidden: set[str] = set()
        self.throttled: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.tokens_issued = 0
        self._tokens: set[str] = set()
        super().__init__(self._handler())

    @property
    def login_base_url(self) -> str:
        return f"{self.origin}/login"

    @property
    def graph_base_url(self) -> str:
        return f"{self.origin}/v1.0"

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    # --- behaviour -------------------------------------------------------------------------------

    def token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if tenant != self.tenant:
            return 400, {"error": "invalid_request", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: grant type"}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found."}
        if form.get("client_secret") != self.client_secret:
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0000",
            }
        if form.get("scope") != f"{self.origin}/.default":
            return 400, {"error": "invalid_scope", "error_description": "AADSTS1002012: scope is not valid."}
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        self.tokens_issued += 1
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

    def graph(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path in self.forbidden:
            return 403, {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges."}}
        if path in self.throttled:
            return 429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}}
        if path == "/teams":
            teams = self.teams
            match = STARTSWITH.match(query.get("$filter", ""))
            if match:
                prefix = match.group(1).replace("''", "'").lower()
                teams = [t for t in teams if t["displayName"].lower().startswith(prefix)]
            return 200, self._page("/teams", teams, query)
        if path == "/sites":
            words = query.get("search", "*").lower()
            sites = self.sites if words == "*" else [s for s in self.sites if words in s["displayName"].lower()]
            return 200, {"value": sites}
        if path.startswith("/users/"):
            key = unquote(path[len("/users/") :]).lower()
            for user in self.users:
                if key in (user["id"].lower(), user["userPrincipalName"].lower()):
                    return 200, user
            return 404, {"error": {"code": "Request_ResourceNotFound", "message": f"Resource '{key}' does not exist."}}
        return 404, {"error": {"code": "BadRequest", "message": f"Resource not found for the segment '{path}'."}}

    def _page(self, path: str, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        top = int(query.get("$top", "100"))
        skip = int(query.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": items[skip : skip + top]}
        if skip + top < len(items):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            rest_query = "&".join(f"{k}={v}" for k, v in rest.items())
            body["@odata.nextLink"] = f"{self.graph_base_url}{path}?{rest_query}&$skiptoken={skip + top}"
        return body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "7")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                double.requests.append(("POST", parts.path))
                match = re.fullmatch(r"/login/([^/]+)/oauth2/v2\.0/token", parts.path)
                if not match:
                    self._reply(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                self._reply(*double.token(unquote(match.group(1)), form))

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                double.requests.append(("GET", parts.path))
                if not parts.path.startswith("/v1.0/"):
                    self._reply(404, {"error": {"code": "BadRequest", "message": "unknown version"}})
                    return
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in double._tokens:
                    self._reply(
                        401,
                        {
                            "error": {
                                "code": "InvalidAuthenticationToken",
                                "message": "Access token is empty or invalid.",
                            }
                        },
                    )
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._reply(*double.graph(parts.path[len("/v1.0") :], query))

        return Handler
