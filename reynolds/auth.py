"""Bearer-token check in front of an MCP endpoint, as a plain ASGI middleware (keeps SSE streaming intact)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class BearerAuth:
    """401 for a request under one of the protected path prefixes unless ``Authorization: Bearer <token>``
    matches one of that prefix's tokens. The longest matching prefix decides.

    Other paths (health, metrics) pass untouched. CORS preflight (OPTIONS) passes too, so the SDK's
    Origin validation answers it.
    """

    def __init__(self, app: ASGIApp, protected: Mapping[str, Iterable[str]], realm: str = "reynolds") -> None:
        self.app = app
        self.protected = sorted(
            ((prefix, [t.encode() for t in tokens if t]) for prefix, tokens in protected.items()),
            key=lambda item: -len(item[0]),
        )
        for prefix, tokens in self.protected:
            if not tokens:
                raise ValueError(f"no bearer token configured for {prefix}")
        self.realm = realm

    def _tokens_for(self, path: str) -> list[bytes] | None:
        for prefix, tokens in self.protected:
            if path.startswith(prefix):
                return tokens
        return None

    @staticmethod
    def _authorized(scope: Scope, tokens: list[bytes]) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        if header[:7].lower() != b"bearer ":
            return False
        given = header[7:].strip()
        # compare against every token so timing does not reveal which one matched
        return any([hmac.compare_digest(given, token) for token in tokens])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tokens = self._tokens_for(scope["path"]) if scope["type"] == "http" else None
        if tokens is not None and scope["method"] != "OPTIONS" and not self._authorized(scope, tokens):
            response = JSONResponse(
                {"error": "invalid_token", "error_description": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
