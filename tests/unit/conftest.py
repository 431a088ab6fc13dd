"""Fixtures for unit tests of Reynolds' stateful modules: a Store on its own Postgres schema and a Redis
key prefix per test, both removed afterwards, so tests never see each other's rows or keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from reynolds.keys import Keys
from reynolds.store import OPEN_STATES, Store

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def raw_store() -> AsyncIterator[Store]:
    """A Store connected to a fresh, empty schema ``t_<uuid>`` (no migrations applied)."""
    schema = f"t_{uuid.uuid4().hex}"
    store = await Store.connect(DATABASE_URL, schema=schema, size=4)
    try:
        yield store
    finally:
        await store.close()
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


@pytest.fixture
async def store(raw_store: Store) -> AsyncIterator[Store]:
    """A migrated Store on its own schema. Afterwards every subtask must have a finished_at exactly when it
    has ended: the open-subtask index and the "anything left?" checks rely on it (migration 004)."""
    await raw_store.migrate()
    yield raw_store
    wrong = await raw_store.pool.fetch(
        "SELECT task_id, id, state, finished_at FROM subtasks WHERE (finished_at IS NULL) <> (state = ANY($1))",
        list(OPEN_STATES),
    )
    assert not wrong, f"subtasks whose finished_at disagrees with their state: {[dict(r) for r in wrong]}"


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def keys(redis_client: aioredis.Redis) -> AsyncIterator[Keys]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    keys = Keys(prefix=f"t_{uuid.uuid4().hex}")
    try:
        yield keys
    finally:
        found = [key async for key in redis_client.scan_iter(match=f"{keys.prefix}:*", count=500)]
        if found:
            await redis_client.delete(*found)
