"""SIGTERM: stop accepting, finish what is in flight (within PATHPRO_SHUTDOWN_TIMEOUT), close the pools."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import httpx

from tests.conftest import make_project


async def _wait_for_lock_waiter(pool: asyncpg.Pool) -> None:
    async with asyncio.timeout(10):
        while not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND application_name = 'pathpro'"):
            await asyncio.sleep(0.02)


async def _refuses_connections(url: str) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                async with httpx.AsyncClient() as c:
                    await c.get(f"{url}/healthz", timeout=1)
            except httpx.ConnectError:
                return
            await asyncio.sleep(0.02)


async def test_sigterm_finishes_the_request_in_flight(run_server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    server = run_server(env={"PATHPRO_SHUTDOWN_TIMEOUT": "20"})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("SELECT 1 FROM task_groups WHERE id = $1 FOR UPDATE", project.group_id)
            in_flight = asyncio.create_task(c.post(
                "/api/v1/tasks", headers=project.headers,
                json={"title": "in flight at SIGTERM", "task_group_id": project.group_id}))
            await _wait_for_lock_waiter(pool)
            server.process.send_signal(signal.SIGTERM)
            # no new connections while the old request is still being served
            await _refuses_connections(server.url)
            assert server.process.poll() is None
            await tx.rollback()
        r = await in_flight
    assert r.status_code == 201
    assert r.json()["data"]["title"] == "in flight at SIGTERM"
    await asyncio.to_thread(server.process.wait, 15)
    log = server.log.read_text()
    assert "Application shutdown complete." in log  # the lifespan closed the pools
    assert "Traceback" not in log


async def test_sigterm_gives_up_on_a_stuck_request_after_the_timeout(run_server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    server = run_server(env={"PATHPRO_SHUTDOWN_TIMEOUT": "1"})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        async with pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM task_groups WHERE id = $1 FOR UPDATE", project.group_id)
                stuck = asyncio.create_task(c.post(
                    "/api/v1/tasks", headers=project.headers,
                    json={"title": "stuck at SIGTERM", "task_group_id": project.group_id}))
                await _wait_for_lock_waiter(pool)
                server.process.send_signal(signal.SIGTERM)
                # exits while the lock is still held: the timeout bounds the wait
                await asyncio.to_thread(server.process.wait, 15)
        r = await stuck
    # told to retry, in the usual JSON shape; the request's transaction was rolled back
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.headers["retry-after"] == "1"
    assert "Traceback" not in server.log.read_text()
    assert await pool.fetchval("SELECT count(*) FROM tasks WHERE project_id = $1", project.id) == 0
