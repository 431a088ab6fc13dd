"""Who is calling: bearer tokens in front of the MCP endpoints, as a plain ASGI middleware (keeps SSE intact).

Clients hold tokens from the client tokens file; each line is ``<token> [name] [scopes]`` (see README
"Security"). Agents hold a *pool token*, ``<pool>.<hex>``, derived from Reynolds' agent key: it admits its
holder to that one pool and is also the token Reynolds presents when it calls the pool's replicas. The
middleware puts the caller's :class:`Principal` in the ASGI scope (``scope[PRINCIPAL_KEY]``); tool bodies read
it back through the SDK's request context (:func:`principal_of`), so no module-level state is involved.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from reynolds import errors
from reynolds.config import Settings

PRINCIPAL_KEY = "reynolds.principal"
SCOPES = frozenset({"read", "submit", "admin"})
DEFAULT_SCOPES = frozenset({"read", "submit"})
ANY_POOL = "*"  # the pool of a legacy shared agent token


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``name`` is the tenant a client's tasks are recorded under; ``pool`` is the one
    pool an agent token admits (``ANY_POOL`` for the legacy shared token, None for a client)."""

    name: str
    scopes: frozenset[str] = frozenset()
    pool: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class TokenTable:
    """Tokens and the principal each one stands for, checked in constant time against every token."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._entries = [(token.encode(), p) for token, p in principals.items() if token]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def lookup(self, given: bytes) -> Principal | None:
        found = None
        for token, principal in self._entries:  # no early exit: timing does not reveal which one matched
            if hmac.compare_digest(given, token):
                found = principal
        return found


class PoolTokens:
    """Pool tokens ``<pool>.<hmac>`` derived from one agent key: any pool, no table to keep in step."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def __bool__(self) -> bool:
        return bool(self._key)

    def token_for(self, pool: str) -> str:
        digest = hmac.new(self._key, f"reynolds pool token\n{pool}".encode(), hashlib.sha256).hexdigest()
        return f"{pool}.{digest}"

    def lookup(self, given: bytes) -> Principal | None:
        pool = given.split(b".", 1)[0].decode("ascii", "replace")
        if hmac.compare_digest(given, self.token_for(pool).encode()):
            return Principal(name=f"pool:{pool}", pool=pool)
        return None


Verifier = TokenTable | PoolTokens


def parse_client_tokens(text: str) -> dict[str, Principal]:
    """The client tokens file: one ``<token> [name] [scopes]`` per line, scopes comma-separated from
    read / submit / admin; ``#`` starts a comment. A bare token is a tenant of its own with read+submit."""
    table: dict[str, Principal] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 3:
            raise errors.InvalidRequest(f"client tokens line {number}: expected '<token> [name] [scopes]'")
        token = fields[0]
        name = fields[1] if len(fields) > 1 else "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]
        scopes = frozenset(fields[2].split(",")) if len(fields) > 2 else DEFAULT_SCOPES
        if not scopes <= SCOPES:
            unknown = ", ".join(sorted(scopes - SCOPES))
            raise errors.InvalidRequest(f"client tokens line {number}: unknown scope {unknown} (read, submit, admin)")
        table[token] = Principal(name=name, scopes=scopes)
    return table


def shared_agent_token(token: str) -> TokenTable:
    """The legacy single agent token (REYNOLDS_AGENT_AUTH=shared): any pool. Agents use it for their /mcp."""
    return TokenTable({token: Principal(name="agent", pool=ANY_POOL)})


def agent_verifier(settings: Settings) -> Verifier:
    """What /agents/mcp accepts: pool tokens (default), or the shared token when explicitly configured."""
    if settings.agent_auth == "shared":
        if not settings.agent_token:
            raise errors.InvalidRequest("REYNOLDS_AGENT_AUTH=shared needs REYNOLDS_AGENT_TOKEN_FILE")
        return shared_agent_token(settings.agent_token)
    if settings.agent_token:
        raise errors.InvalidRequest(
            "REYNOLDS_AGENT_TOKEN is the legacy shared agent token (a key to every pool): give agents pool tokens "
            "derived from REYNOLDS_AGENT_KEY_FILE (README, Security), or set REYNOLDS_AGENT_AUTH=shared"
        )
    if not settings.agent_key:
        raise errors.InvalidRequest("no agent key: set REYNOLDS_AGENT_KEY_FILE (README, Security)")
    return PoolTokens(settings.agent_key)


def agent_token_for(settings: Settings, pool: str) -> str:
    """The token Reynolds presents to the replicas of ``pool`` (the one their agents hold)."""
    if settings.agent_auth == "shared":
        return settings.agent_token
    return PoolTokens(settings.agent_key).token_for(pool)


def principal_of(ctx: Any) -> Principal:
    """The caller of a tool, as the middleware recorded it on the HTTP request (``ctx`` is the tool's Context)."""
    request = getattr(ctx.request_context, "request", None)
    return caller_in(request.scope if request is not None else {})


def caller_in(scope: Mapping[str, Any]) -> Principal:
    """The caller the middleware recorded in an ASGI scope (a tool's request, or a plain route's)."""
    principal = scope.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise errors.Forbidden("this call carries no authenticated caller")
    return principal


def require(ctx: Any, scope: str) -> Principal:
    return allowed(principal_of(ctx), scope)


def allowed(principal: Principal, scope: str) -> Principal:
    """``principal`` if it holds ``scope``; Forbidden naming the scope otherwise."""
    if not principal.allows(scope):
        raise errors.Forbidden(f"this token lacks the {scope!r} scope")
    return principal


class BearerAuth:
    """401 for a request under one of the protected path prefixes unless ``Authorization: Bearer <token>`` is
    one of that prefix's tokens; the caller's Principal goes into the scope. The longest matching prefix
    decides. Other paths (health, metrics) pass untouched, and so does CORS preflight (OPTIONS), so the
    SDK's Origin validation answers it."""

    def __init__(
        self, app: ASGIApp, protected: Mapping[str, Verifier | Iterable[str]], realm: str = "reynolds"
    ) -> None:
        self.app = app
        self.protected = sorted(((p, _verifier(v)) for p, v in protected.items()), key=lambda item: -len(item[0]))
        for prefix, verifier in self.protected:
            if not verifier:
                raise ValueError(f"no bearer token configured for {prefix}")
        self.realm = realm

    def _verifier_for(self, path: str) -> Verifier | None:
        for prefix, verifier in self.protected:
            if path.startswith(prefix):
                return verifier
        return None

    @staticmethod
    def _principal(scope: Scope, verifier: Verifier) -> Principal | None:
        header = dict(scope["headers"]).get(b"authorization", b"")
        if header[:7].lower() != b"bearer ":
            return None
        return verifier.lookup(header[7:].strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verifier = self._verifier_for(scope["path"]) if scope["type"] == "http" else None
        if verifier is not None and scope["method"] != "OPTIONS":
            principal = self._principal(scope, verifier)
            if principal is None:
                response = JSONResponse(
                    {"error": "invalid_token", "error_description": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
                )
                await response(scope, receive, send)
                return
            scope = {**scope, PRINCIPAL_KEY: principal}
        await self.app(scope, receive, send)


def _verifier(value: Verifier | Iterable[str]) -> Verifier:
    if isinstance(value, TokenTable | PoolTokens):
        return value
    return TokenTable({t: Principal(name="token") for t in value})
