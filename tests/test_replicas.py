"""Two `pathpro serve` processes on one PostgreSQL and one Redis: one window, immediate revocation, and
Redis stopped and restarted under them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from service import tokencache, tokens
from service.settings import Settings
from tests.conftest import ROOT, make_project
from tests.reqpath_support import bearer, private_redis

PATH = "/api/v1/task_groups"
_ID_OF = "SELECT id FROM api_tokens WHERE digest = $1"


async def _codes(http: httpx.AsyncClient, urls: list[str], token: str, n: int) -> list[int]:
    return [(await http.get(urls[i % len(urls)] + PATH, headers=bearer(token))).status_code for i in range(n)]


async def test_two_replicas_share_one_window(run_server: Any, pool: asyncpg.Pool) -> None:
    a, b = run_server(), run_server()
    urls = [a.url, b.url]
    alternating = await make_project(pool, rate_limit=5)
    burst = await make_project(pool, rate_limit=10)
    async with httpx.AsyncClient(timeout=30) as http:
        answers = [await http.get(urls[i % 2] + PATH, headers=alternating.headers) for i in range(7)]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0", "0", "0"]
        assert len({r.headers["X-RateLimit-Reset"] for r in answers}) == 1

        # 3N at once, spread over both replicas and many connections: exactly N get through
        limits = httpx.Limits(max_connections=30)
        async with httpx.AsyncClient(timeout=30, limits=limits) as wide:
            replies = await asyncio.gather(*(wide.get(urls[i % 2] + PATH, headers=burst.headers)
                                             for i in range(30)))
        statuses = [r.status_code for r in replies]
        assert statuses.count(200) == 10 and statuses.count(429) == 20
        assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in replies if r.status_code == 429)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "PATHPRO_REDIS_PREFIX": settings.redis_prefix}
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)


async def _revoke_under_load(http: httpx.AsyncClient, urls: list[str], token: str,
                             revoke: Callable[[], Awaitable[None]]) -> None:
    """Both replicas busy with the token; every request that starts after `revoke` returned is a 401."""
    log: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def hammer(i: int) -> None:
        url = urls[i % 2] + PATH
        while not stop.is_set():
            started = time.monotonic()
            log.append((started, (await http.get(url, headers=bearer(token))).status_code))

    workers = [asyncio.create_task(hammer(i)) for i in range(8)]
    try:
        while sum(1 for _, code in log if code == 200) < 40:
            await asyncio.sleep(0.01)
        await revoke()
        revoked_at = time.monotonic()
        while sum(1 for started, _ in log if started > revoked_at) < 40:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    after = [code for started, code in log if started > revoked_at]
    assert after and set(after) == {401}
    assert {code for started, code in log if started < revoked_at} <= {200, 401}


async def test_revocation_is_immediate_on_every_replica(run_server: Any, pool: asyncpg.Pool,
                                                        settings: Settings,
                                                        redis_client: aioredis.Redis) -> None:
    a, b = run_server(), run_server()
    urls = [a.url, b.url]
    project = await make_project(pool)
    ids = {}
    for name in ("CLI", "Loaded", "Loaded CLI"):
        limit = 1_000_000 if name.startswith("Loaded") else None
        token_id, token = await tokens.create(pool, project.id, name, "live", rate_limit=limit)
        ids[name] = (token_id, token)
    async with httpx.AsyncClient(timeout=30) as http:
        for token in (project.token, ids["CLI"][1]):
            assert await _codes(http, urls, token, 2) == [200, 200]  # cached on both

        # revoked through the service's code, the next request on the other replica is refused
        assert await tokens.revoke(pool, redis_client, settings.redis_prefix, project.id, project.token_id)
        assert await _codes(http, [b.url, a.url], project.token, 2) == [401, 401]

        done = _cli(settings, "token", "revoke", project.slug, str(ids["CLI"][0]))
        assert done.returncode == 0, done.stderr
        assert await _codes(http, urls, ids["CLI"][1], 2) == [401, 401]

        async def through_code() -> None:
            assert await tokens.revoke(pool, redis_client, settings.redis_prefix, project.id,
                                       ids["Loaded"][0])

        async def through_cli() -> None:
            args = ("token", "revoke", project.slug, str(ids["Loaded CLI"][0]))
            done = await asyncio.to_thread(_cli, settings, *args)
            assert done.returncode == 0, done.stderr

        await _revoke_under_load(http, urls, ids["Loaded"][1], through_code)
        await _revoke_under_load(http, urls, ids["Loaded CLI"][1], through_cli)


async def test_redis_stopped_and_restarted_with_old_data(run_server: Any, pool: asyncpg.Pool,
                                                         settings: Settings, tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as server:
        env = {"REDIS_URL": server.url, "PATHPRO_REDIS_RETRY_INTERVAL": "0.2"}
        a, b = run_server(env=env), run_server(env=env)
        urls = [a.url, b.url]
        project = await make_project(pool)
        _, kept = await tokens.create(pool, project.id, "Kept", "live", rate_limit=50)
        plain = server.client()
        async with httpx.AsyncClient(timeout=30) as http:
            for token in (project.token, kept):
                assert await _codes(http, urls, token, 2) == [200, 200]
            plain.save()  # a snapshot holding both cached records and no tombstone

            server.stop()
            # Redis is gone: PostgreSQL answers, the limit is per replica, nothing fails
            assert await _codes(http, urls, kept, 4) == [200] * 4
            async with aioredis.from_url(server.url) as unreachable:
                assert await tokens.revoke(pool, unreachable, settings.redis_prefix, project.id,
                                           project.token_id)
            assert await _codes(http, urls, project.token, 2) == [401, 401]

            server.start()  # back with the old snapshot: the revoked token's record is in it
            keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
            assert plain.get(keys.record) is not None and not plain.exists(keys.tombstone)
            await asyncio.sleep(0.3)  # past the replicas' retry interval
            assert await _codes(http, urls, project.token, 4) == [401] * 4
            assert plain.exists(keys.tombstone) and plain.get(keys.record) in (None, b"x")
            assert await pool.fetchval("SELECT count(*) FROM token_invalidations WHERE token_id = $1"
                                       " AND applied_at IS NULL", project.token_id) == 0

            # the shared limit is back on both replicas, counting from what Redis remembers
            fresh_project = await make_project(pool, rate_limit=4)
            assert await _codes(http, urls, fresh_project.token, 5) == [200] * 4 + [429]

            # a restart the replicas do not see fail: a revoked token's record restored from a snapshot
            assert await _codes(http, urls, kept, 2) == [200, 200]
            plain.save()
            kept_id = await pool.fetchval(_ID_OF, tokens.digest(kept))
            async with aioredis.from_url(server.url) as reachable:
                assert await tokens.revoke(pool, reachable, settings.redis_prefix, project.id, kept_id)
            server.stop()
            server.start()
            assert await _codes(http, urls, kept, 4) == [401] * 4
            kept_keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(kept))
            assert plain.exists(kept_keys.tombstone)
            log_text = a.log.read_text() + b.log.read_text()
            assert log_text.count("Redis is unreachable") == 2  # once per replica for the outage
            assert "Traceback" not in log_text and project.token not in log_text
