"""Embedded Postgres and Redis: real servers from the packaged binaries, started only when needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
import redis

from reynolds import embedded


def test_configured_servers_win_and_nothing_is_started(tmp_path: Path) -> None:
    found = embedded.ensure_services(tmp_path, "postgresql://u@db.example:5433/x", "redis://cache.example:6380/0")
    assert found.env == {}
    assert found.notes == ["Postgres: configured, db.example:5433", "Redis: configured, cache.example:6380"]
    assert not any(tmp_path.iterdir())


def test_a_closed_port_does_not_count_as_a_server() -> None:
    port = embedded._free_port()
    assert not embedded.postgres_answers(f"postgresql://postgres@127.0.0.1:{port}/x")
    assert not embedded.redis_answers(f"redis://127.0.0.1:{port}/0")


def sql(url: str, statement: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_embedded_postgres_starts_keeps_its_data_and_stops(tmp_path: Path) -> None:
    owner = embedded.Embedded()
    port = embedded.start_postgres(tmp_path / "pg", owner)
    url = f"postgresql://postgres@127.0.0.1:{port}/reynolds"
    try:
        embedded.create_database(url)
        embedded.create_database(url)  # a second start finds it
        sql(url, "CREATE TABLE kept AS SELECT 7 AS n")
    finally:
        owner.stop()
    assert not embedded.postgres_answers(url)
    port = embedded.start_postgres(tmp_path / "pg", owner)  # same data directory: no initdb, same rows
    try:
        assert sql(f"postgresql://postgres@127.0.0.1:{port}/reynolds", "SELECT n FROM kept") == 7
    finally:
        owner.stop()


def test_embedded_redis_starts_on_loopback_and_stops(tmp_path: Path) -> None:
    owner = embedded.Embedded()
    port = embedded.start_redis(tmp_path / "redis", owner)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        assert client.ping()
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("appendonly")["appendonly"] == "yes"
    finally:
        client.close()
        owner.stop()
    assert not embedded.redis_answers(f"redis://127.0.0.1:{port}/0")


def test_a_relative_state_directory_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `reynolds up` passes .reynolds, relative to where it runs
    owner = embedded.Embedded()
    port = embedded.start_redis(Path(".reynolds") / "redis", owner)
    try:
        assert embedded.redis_answers(f"redis://127.0.0.1:{port}/0")
        assert (tmp_path / ".reynolds" / "redis" / "server.log").exists()
    finally:
        owner.stop()
