"""BearerAuth in front of a small Starlette app, called through httpx2's ASGI transport; the token formats."""

from __future__ import annotations

import re

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from reynolds import errors
from reynolds.auth import (
    ANY_POOL,
    PRINCIPAL_KEY,
    BearerAuth,
    PoolTokens,
    Principal,
    TokenTable,
    Verifier,
    agent_token_for,
    agent_verifier,
    parse_client_tokens,
)
from reynolds.config import Settings

pytestmark = pytest.mark.anyio

CLIENT_TOKENS = ["client-token-one", "client-token-two"]
AGENT_TOKEN = "agent-token-xyz"


async def where(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.method} {request.url.path}")


def app(protected: dict[str, list[str]]) -> BearerAuth:
    paths = ["/mcp", "/mcp/deeper", "/agents/mcp", "/agents/other", "/health", "/metrics"]
    inner = Starlette(routes=[Route(p, where, methods=["GET", "POST", "OPTIONS"]) for p in paths])
    return BearerAuth(inner, protected)


def client(protected: dict[str, list[str]] | None = None) -> httpx2.AsyncClient:
    protected = protected or {"/mcp": CLIENT_TOKENS, "/agents/mcp": [AGENT_TOKEN]}
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app(protected)), base_url="http://reynolds")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_is_401_with_a_challenge() -> None:
    async with client() as c:
        r = await c.post("/mcp")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="reynolds"'
    assert r.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token", "Bearer ", "Basic client-token-one", "client-token-one", "Bearer client-token-one-extra"],
)
async def test_a_wrong_token_or_scheme_is_401(header: str) -> None:
    async with client() as c:
        r = await c.post("/mcp", headers={"Authorization": header})
    assert r.status_code == 401


@pytest.mark.parametrize("token", CLIENT_TOKENS)
async def test_any_configured_token_passes(token: str) -> None:
    async with client() as c:
        r = await c.post("/mcp", headers=bearer(token))
        deeper = await c.get("/mcp/deeper", headers=bearer(token))
    assert (r.status_code, r.text) == (200, "POST /mcp")
    assert (deeper.status_code, deeper.text) == (200, "GET /mcp/deeper")


async def test_the_scheme_is_case_insensitive() -> None:
    async with client() as c:
        r = await c.post("/mcp", headers={"Authorization": f"bearer {CLIENT_TOKENS[0]}"})
    assert r.status_code == 200


async def test_paths_under_a_prefix_are_protected_too() -> None:
    async with client() as c:
        r = await c.get("/mcp/deeper")
    assert r.status_code == 401


async def test_client_and_agent_tokens_are_not_interchangeable() -> None:
    async with client() as c:
        assert (await c.post("/agents/mcp", headers=bearer(CLIENT_TOKENS[0]))).status_code == 401
        assert (await c.post("/mcp", headers=bearer(AGENT_TOKEN))).status_code == 401
        assert (await c.post("/agents/mcp", headers=bearer(AGENT_TOKEN))).status_code == 200
        assert (await c.post("/mcp", headers=bearer(CLIENT_TOKENS[1]))).status_code == 200


async def test_the_longest_matching_prefix_decides() -> None:
    # the shorter prefix is listed first, so order of declaration must not matter
    async with client({"/agents": ["outer-token"], "/agents/mcp": ["inner-token"]}) as c:
        assert (await c.get("/agents/mcp", headers=bearer("outer-token"))).status_code == 401
        assert (await c.get("/agents/mcp", headers=bearer("inner-token"))).status_code == 200
        assert (await c.get("/agents/other", headers=bearer("inner-token"))).status_code == 401
        assert (await c.get("/agents/other", headers=bearer("outer-token"))).status_code == 200


async def test_unprotected_paths_pass_without_a_token() -> None:
    async with client() as c:
        health = await c.get("/health")
        metrics = await c.get("/metrics", headers=bearer("whatever"))
    assert (health.status_code, health.text) == (200, "GET /health")
    assert metrics.status_code == 200


async def test_cors_preflight_passes_to_the_app() -> None:
    async with client() as c:
        r = await c.options("/mcp", headers={"Origin": "http://localhost:3000"})
    assert (r.status_code, r.text) == (200, "OPTIONS /mcp")


def test_a_prefix_without_tokens_is_a_configuration_error() -> None:
    inner = Starlette()
    with pytest.raises(ValueError, match="no bearer token configured for /agents/mcp"):
        BearerAuth(inner, {"/mcp": ["t"], "/agents/mcp": [""]})
    with pytest.raises(ValueError, match="no bearer token configured for /mcp"):
        BearerAuth(inner, {"/mcp": []})


# ---------------------------------------------------------------- principals and token formats
def principal_app(protected: dict[str, Verifier]) -> BearerAuth:
    async def who(request: Request) -> JSONResponse:
        p = request.scope[PRINCIPAL_KEY]
        return JSONResponse({"name": p.name, "scopes": sorted(p.scopes), "pool": p.pool})

    return BearerAuth(Starlette(routes=[Route("/mcp", who, methods=["POST"])]), protected)


async def test_the_callers_principal_reaches_the_app_through_the_scope() -> None:
    table = TokenTable(parse_client_tokens("tok-alice alice\ntok-ops ops admin\n"))
    transport = httpx2.ASGITransport(app=principal_app({"/mcp": table}))
    async with httpx2.AsyncClient(transport=transport, base_url="http://reynolds") as c:
        alice = (await c.post("/mcp", headers=bearer("tok-alice"))).json()
        ops = (await c.post("/mcp", headers=bearer("tok-ops"))).json()
    assert alice == {"name": "alice", "scopes": ["read", "submit"], "pool": None}
    assert ops == {"name": "ops", "scopes": ["admin"], "pool": None}


def test_client_token_lines_keep_old_files_working_and_add_names_and_scopes() -> None:
    table = parse_client_tokens("# comment\nbare-token\n\nt2 bob read  # trailing comment\nt3 ops admin,read\n")
    assert set(table) == {"bare-token", "t2", "t3"}
    bare = table["bare-token"]
    assert bare.scopes == {"read", "submit"} and bare.name.startswith("token-") and "bare" not in bare.name
    assert (table["t2"].name, table["t2"].scopes) == ("bob", {"read"})
    assert not table["t2"].allows("submit")
    assert table["t3"].allows("submit")  # admin includes every scope


@pytest.mark.parametrize(
    ("text", "message"),
    [("tok name superuser", "unknown scope superuser"), ("a b c d", "expected '<token> [name] [scopes]'")],
)
def test_a_bad_client_tokens_line_names_its_number(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=re.escape(f"line 2: {message}")):
        parse_client_tokens("ok-token\n" + text)


def test_pool_tokens_admit_their_own_pool_only() -> None:
    tokens = PoolTokens("the-agent-key")
    devops = tokens.token_for("devops")
    assert devops.startswith("devops.") and devops != tokens.token_for("code")
    assert tokens.lookup(devops.encode()) == Principal(name="pool:devops", pool="devops")
    forged = "code." + devops.split(".", 1)[1]  # another pool's name on a real token's signature
    for given in (forged, "devops.", "devops", PoolTokens("other-key").token_for("devops"), "\xff"):
        assert tokens.lookup(given.encode("utf-8", "surrogateescape")) is None


def test_the_shared_agent_token_needs_an_explicit_setting() -> None:
    with pytest.raises(errors.InvalidRequest, match="REYNOLDS_AGENT_AUTH=shared"):
        agent_verifier(Settings(agent_token="old-shared", agent_key="k"))
    with pytest.raises(errors.InvalidRequest, match="no agent key"):
        agent_verifier(Settings())
    shared = Settings(agent_token="old-shared", agent_auth="shared")
    assert agent_verifier(shared).lookup(b"old-shared") == Principal(name="agent", pool=ANY_POOL)
    assert agent_token_for(shared, "devops") == "old-shared"
    keyed = Settings(agent_key="k")
    assert agent_token_for(keyed, "devops") == PoolTokens("k").token_for("devops")
