"""Statement timeout and the bounded wait for a pool connection: a quick 503, never a hang."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_project


@asynccontextmanager
async def _client(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, **changes))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c


@asynccontextmanager
async def _group_locked(pool: asyncpg.Pool, group_id: int) -> AsyncIterator[None]:
    """Hold the task group's row lock, as a long transaction elsewhere would."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM task_groups WHERE id = $1 FOR UPDATE", group_id)
            yield


async def test_every_connection_has_the_statement_timeout(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, db_statement_timeout_ms=1234))
    async with app.router.lifespan_context(app):
        assert await app.state.pool.fetchval("SHOW statement_timeout") == "1234ms"


async def test_a_statement_over_the_timeout_is_a_503_and_writes_nothing(settings: Settings,
                                                                        pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    async with _client(settings, db_statement_timeout_ms=300) as c, _group_locked(pool, project.group_id):
        r = await c.post("/api/v1/tasks", headers=project.headers,
                         json={"title": "waits on the lock", "task_group_id": project.group_id})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.headers["retry-after"] == "1"
    assert await pool.fetchval("SELECT count(*) FROM tasks WHERE project_id = $1", project.id) == 0


async def test_an_exhausted_pool_answers_503_instead_of_queueing(settings: Settings, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    async with _client(settings, db_pool_min=1, db_pool_max=1, db_acquire_timeout=0.2) as c:
        async with _group_locked(pool, project.group_id):
            # takes the only connection and keeps it while it waits on the lock
            blocked = asyncio.create_task(c.post(
                "/api/v1/tasks", headers=project.headers,
                json={"title": "holds the connection", "task_group_id": project.group_id}))
            async with asyncio.timeout(10):
                while not await pool.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database() AND application_name = 'pathpro'"):
                    await asyncio.sleep(0.02)
            r = await c.get("/api/v1/tasks", headers=project.headers)
            assert r.status_code == 503
            assert r.json()["error"]["message"] == "The service is busy. Retry shortly."
            assert r.headers["retry-after"] == "1"
        # the lock is gone: the waiting request finishes, and the pool serves again
        assert (await blocked).status_code == 201
        assert (await c.get("/api/v1/tasks", headers=project.headers)).status_code == 200
