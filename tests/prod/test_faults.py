"""PostgreSQL or Redis going away under load, against a real `pathpro serve` on servers of the test's own."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.migrate import migrate
from service.settings import Settings
from tests.conftest import Project, free_port, make_project
from tests.prod.private_servers import PrivatePostgres, PrivateRedis
from tests.prod.topology import Replica, server_env, wait_until


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    r = PrivateRedis()
    try:
        r.start()
        yield r
    finally:
        r.destroy()


@pytest.fixture
async def private_pool(private_pg: PrivatePostgres) -> AsyncIterator[asyncpg.Pool]:
    await migrate(private_pg.url)
    pool = await asyncpg.create_pool(private_pg.url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for r in started:
        if r.process is not None and r.process.poll() is None:
            r.stop()


class Load:
    """Clients creating and listing tasks until told to stop; every answer kept."""

    def __init__(self, url: str, project: Project) -> None:
        self.url = url
        self.project = project
        self.answers: list[httpx.Response] = []
        self.errors: list[str] = []
        self.created: list[int] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def count(self, status: int) -> int:
        return sum(1 for r in self.answers if r.status_code == status)

    async def _worker(self, n: int) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=15) as c:
            i = 0
            while not self._stop.is_set() and i < 5000:
                i += 1
                try:
                    if i % 2:
                        r = await c.post("/api/v1/tasks", headers=self.project.headers,
                                         json={"title": f"load {n}-{i}", "task_group_id": self.project.group_id,
                                               "position": 1})
                        if r.status_code == 201:
                            self.created.append(r.json()["data"]["id"])
                    else:
                        r = await c.get("/api/v1/tasks", headers=self.project.headers)
                except httpx.TransportError as exc:
                    self.errors.append(repr(exc))
                    await asyncio.sleep(0.05)
                    continue
                self.answers.append(r)
                if r.status_code == 503:
                    await asyncio.sleep(0.02)

    def start(self, workers: int = 3) -> None:
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def until(self, check, what: str, within: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(within):
            while not check():
                await asyncio.sleep(0.05)


async def test_postgres_stopped_mid_load_gives_503s_then_recovers_without_restart(
    private_pg: PrivatePostgres, private_pool: asyncpg.Pool, settings: Settings, replica, tmp_path: Path,
) -> None:
    project = await make_project(private_pool, rate_limit=1_000_000)  # load, not the limit, is under test
    server = Replica(free_port(), server_env(
        settings, DATABASE_URL=private_pg.url, PATHPRO_DB_CONNECT_TIMEOUT="1", PATHPRO_DB_ACQUIRE_TIMEOUT="1",
    ), tmp_path / "replica.log")
    await asyncio.to_thread(server.start)
    replica.append(server)
    await private_pool.close()

    load = Load(server.url, project)
    load.start()
    await load.until(lambda: load.count(201) >= 10, "tasks created before the outage")
    await asyncio.to_thread(private_pg.stop)
    down_at = len(load.answers)
    await load.until(lambda: sum(r.status_code == 503 for r in load.answers[down_at:]) >= 10, "503s")
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "postgres": "down", "redis": "ok"}
        assert (await c.get("/healthz")).status_code == 200

    await asyncio.to_thread(private_pg.start)
    up_at = len(load.answers)
    # back within seconds, the same process: it reconnects on its own
    await load.until(lambda: sum(r.status_code == 201 for r in load.answers[up_at:]) >= 10, "recovery", 20.0)
    await load.stop()

    statuses = collections.Counter(r.status_code for r in load.answers)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert load.errors == []
    for r in load.answers:
        if r.status_code == 503:
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"]["code"] == "service_unavailable"
            assert int(r.headers["retry-after"]) >= 1
    assert server.process is not None and server.process.poll() is None
    assert "Traceback" not in server.log.read_text()

    # nothing half-written: every acknowledged task is there, positions are still 1..n, totals add up
    conn = await asyncpg.connect(private_pg.url)
    try:
        rows = await conn.fetch("SELECT id, position FROM tasks WHERE task_group_id = $1 ORDER BY position",
                                project.group_id)
        counted = await conn.fetchval("SELECT sum(n) FROM task_counts WHERE project_id = $1", project.id)
    finally:
        await conn.close()
    assert set(load.created) <= {r["id"] for r in rows}
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1))
    assert counted == len(rows)


async def test_redis_stopped_mid_load_the_service_keeps_answering(
    private_redis: PrivateRedis, settings: Settings, pool: asyncpg.Pool, replica, tmp_path: Path,
) -> None:
    project = await make_project(pool, rate_limit=1_000_000)
    env = server_env(settings, REDIS_URL=private_redis.url, PATHPRO_REDIS_PREFIX=f"t-{uuid.uuid4().hex}:")
    server = Replica(free_port(), env, tmp_path / "replica.log")
    await asyncio.to_thread(server.start)
    replica.append(server)

    load = Load(server.url, project)
    load.start(workers=2)
    await load.until(lambda: len(load.answers) >= 10, "answers with Redis up")
    await asyncio.to_thread(private_redis.stop)
    down_at = len(load.answers)
    await load.until(lambda: len(load.answers) >= down_at + 20, "answers with Redis down")
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "degraded", "postgres": "ok", "redis": "down"}
        metrics = (await c.get("/metrics")).text
        [fallback] = [ln for ln in metrics.splitlines() if ln.startswith("pathpro_redis_fallback_total ")]
        assert float(fallback.split()[1]) > 0
        await asyncio.to_thread(private_redis.start)
        await load.until(lambda: len(load.answers) >= down_at + 40, "answers with Redis back")
        await asyncio.to_thread(wait_until, lambda: httpx.get(f"{server.url}/readyz").json()["redis"] == "ok",
                                "redis ready again", 10.0)
    await load.stop()
    assert load.errors == []
    assert {r.status_code for r in load.answers} <= {200, 201}
    assert "Traceback" not in server.log.read_text()
