"""Bearer-token check in front of an MCP endpoint, as a plain ASGI middleware (keeps SSE streaming intact)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class BearerAuth:
    """401 for requests under ``prefix`` unless ``Authorization: Bearer <token>`` matches one of ``tokens``.

    Paths outside ``prefix`` (health, metrics) pass untouched. CORS preflight (OPTIONS) passes too,
    so the SDK's Origin validation answers it.
    """

    def __init__(self, app: ASGIApp, tokens: Iterable[str], prefix: str, realm: str = "reynolds") -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens if t]
        if not self.tokens:
            raise ValueError(f"no bearer token configured for {prefix}")
        self.prefix = prefix
        self.realm = realm

    def _authorized(self, scope: Scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        if header[:7].lower() != b"bearer ":
            return False
        given = header[7:].strip()
        # compare against every token so timing does not reveal which one matched
        return any([hmac.compare_digest(given, token) for token in self.tokens])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(self.prefix)
            and scope["method"] != "OPTIONS"
            and not self._authorized(scope)
        ):
            response = JSONResponse(
                {"error": "invalid_token", "error_description": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
