"""Real PostgreSQL and Redis for the suite.

TEST_DATABASE_URL / TEST_REDIS_URL when set; else testcontainers when a Docker daemon answers a ping;
else the embedded servers `make run` uses. Each test session gets a database of its own and a Redis key
prefix of its own, and removes both at the end; every test makes its own project, so tests share no data.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from service import admin, passwords, tokens
from service.app import create_app
from service.settings import Settings
from tests.databases import fresh_database

ROOT = Path(__file__).resolve().parent.parent


def _docker_answers() -> bool:
    """Whether a Docker daemon answers the Engine API's ping.

    The socket is tried first with a socket of our own: the docker SDK and httpcore both leave their
    socket to the garbage collector when nothing listens, and that warning fails the session."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(3)
                probe.connect(path)
            transport, url = httpx.HTTPTransport(uds=path), "http://docker/_ping"
        else:
            url = host.replace("tcp://", "http://", 1).rstrip("/") + "/_ping"
            parsed = httpx.URL(url)
            with socket.create_connection((parsed.host, parsed.port or 2375), timeout=3):
                pass
            transport = httpx.HTTPTransport()
        with httpx.Client(transport=transport, timeout=3) as client:
            return client.get(url).status_code == 200
    except (OSError, httpx.HTTPError):
        return False


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, Redis URL)."""
    with contextlib.ExitStack() as stack:
        pg = os.environ.get("TEST_DATABASE_URL")
        rd = os.environ.get("TEST_REDIS_URL")
        if (not pg or not rd) and _docker_answers():
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            if not pg:
                pgc = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
                pg = pgc.get_connection_url()
            if not rd:
                rc = stack.enter_context(RedisContainer("redis:7-alpine"))
                rd = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
        if not pg or not rd:
            from service import devservers

            data = tmp_path_factory.mktemp("servers")
            pg = pg or stack.enter_context(devservers.embedded_postgres(data / "postgres"))
            rd = rd or stack.enter_context(devservers.embedded_redis(data / "redis"))
        yield pg, rd


@pytest.fixture(scope="session")
async def database_url(servers: tuple[str, str]) -> AsyncIterator[str]:
    async with fresh_database(servers[0]) as url:
        yield url


@pytest.fixture(scope="session")
async def redis_url(servers: tuple[str, str]) -> str:
    return servers[1]


@pytest.fixture(scope="session")
async def settings(database_url: str, redis_url: str) -> AsyncIterator[Settings]:
    prefix = f"pathpro-test-{uuid.uuid4().hex[:12]}:"
    # every test's deliberate 401s come from one address; the per-address limit has tests of its own
    yield Settings(database_url=database_url, redis_url=redis_url, redis_prefix=prefix,
                   auth_failure_limit=1_000_000)
    r = aioredis.from_url(redis_url)
    try:
        async for key in r.scan_iter(match=f"{prefix}*", count=1000):
            await r.delete(key)
    finally:
        await r.aclose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    yield p
    await p.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.from_url(redis_url)
    yield r
    await r.aclose()


@dataclass
class Project:
    id: int
    slug: str
    admin_id: int
    admin_email: str
    admin_password: str
    group_id: int
    token_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


# Every test admin shares one password, hashed once: argon2 is slow on purpose.
ADMIN_PASSWORD = f"pw-{uuid.uuid4().hex}"


@functools.cache
def admin_password_hash() -> str:
    return passwords.hash_password(ADMIN_PASSWORD)


async def make_project(pool: asyncpg.Pool, *, rate_limit: int | None = None, groups: int = 1) -> Project:
    """A project with an admin, `groups` task groups and a live token."""
    slug = f"p-{uuid.uuid4().hex[:10]}"
    email = f"admin-{slug}@example.com"
    password = ADMIN_PASSWORD
    async with pool.acquire() as conn:
        project_id = await admin.create_project(conn, slug, f"Project {slug}", rate_limit)
        await conn.execute("INSERT INTO users (email, name, password_hash) VALUES ($1, 'Admin', $2)",
                           email, admin_password_hash())
        admin_id = await admin.add_member(conn, slug, email, "admin")
        group_ids = [await admin.create_group(conn, slug, f"Group {i}") for i in range(groups)]
        token_id, token = await tokens.create(conn, project_id, "Test token", "live", created_by=admin_id)
    return Project(project_id, slug, admin_id, email, password, group_ids[0], token_id, token)


@pytest.fixture
async def project(pool: asyncpg.Pool) -> Project:
    return await make_project(pool)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def run_server(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """Starts real `pathpro serve` processes on the test database and Redis; stops them afterwards."""
    started: list[Replica] = []

    def start(*, workers: int = 1, env: dict[str, str] | None = None) -> Replica:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        full_env = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "PATHPRO_REDIS_PREFIX": settings.redis_prefix,
            "PATHPRO_AUTH_FAILURE_LIMIT": str(settings.auth_failure_limit),
            **(env or {}),
        }
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", str(workers)],
                cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"pathpro serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        replica = Replica(url, proc, log)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in started:
        try:
            replica.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            replica.process.kill()
