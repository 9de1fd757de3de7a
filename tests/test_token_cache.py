"""The token cache: hits cost no PostgreSQL, misses fill it, tombstones win the stale-fill race."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from service import tokencache, tokens
from service.settings import Settings
from tests.conftest import Project
from tests.reqpath_support import Counting, app_client, bearer, count_redis_commands


@pytest.fixture
def gate_pool(app: Any) -> Any:
    """Counts every PostgreSQL call the request path (not the handlers) makes."""
    gate = app.state.gate
    original = gate.pool
    gate.pool = Counting(original)
    yield gate.pool
    gate.pool = original


@pytest.fixture
def gate_redis_commands(app: Any) -> Any:
    client = app.state.gate.redis
    seen = count_redis_commands(client)
    yield seen
    del client.execute_command


async def test_a_cached_token_costs_one_redis_call_and_no_postgresql(
        app, client, project: Project, gate_pool: Counting, gate_redis_commands: list[str]) -> None:
    assert (await client.get("/api/v1/task_groups", headers=project.headers)).status_code == 200
    await app.state.gate.settled()  # the once-a-minute last-used write
    assert gate_pool.calls.count("fetchrow") == 1  # the miss
    gate_pool.calls.clear()
    gate_redis_commands.clear()
    for _ in range(5):
        assert (await client.get("/api/v1/task_groups", headers=project.headers)).status_code == 200
    assert gate_pool.calls == []
    assert gate_redis_commands == ["EVALSHA"] * 5


async def test_the_cache_answers_until_invalidated_through_revoke(
        app, client, pool: asyncpg.Pool, settings: Settings, project: Project) -> None:
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    # behind the service's back: the cache does not look at PostgreSQL, so it still answers
    await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", project.token_id)
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    # the proper path tombstones the cache, and the very next request is refused
    await tokens.revoke(pool, app.state.redis, settings.redis_prefix, project.id, project.token_id)
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.status_code == 401
    assert "X-RateLimit-Limit" not in r.headers
    assert await pool.fetchval("SELECT count(*) FROM token_invalidations WHERE token_id = $1 "
                               "AND applied_at IS NOT NULL", project.token_id) == 1


async def test_the_stale_fill_race_is_closed(app, client, pool: asyncpg.Pool, settings: Settings,
                                             project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica reads "valid" from PostgreSQL, the revoke completes, then the replica tries to fill."""
    read_done = asyncio.Event()
    revoked = asyncio.Event()
    original = tokens.lookup
    first = True

    async def lookup(conn: Any, token_digest: bytes) -> Any:
        nonlocal first
        record = await original(conn, token_digest)
        if first:
            first = False
            assert record is not None  # the stale read: valid
            read_done.set()
            await revoked.wait()
        return record

    monkeypatch.setattr(tokens, "lookup", lookup)
    stale = asyncio.create_task(client.get("/api/v1/tasks", headers=project.headers))
    await read_done.wait()
    assert await tokens.revoke(pool, app.state.redis, settings.redis_prefix, project.id, project.token_id)
    revoked.set()
    # the fill met the tombstone: nothing valid was cached, and the request asked again
    assert (await stale).status_code == 401
    keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
    assert await app.state.redis.get(keys.record) != tokencache.encode_record(
        project.token_id, project.id, 60).encode()
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401


@pytest.mark.parametrize("garbage", [b"garbage", b"v1:1:2", b"v1:1:2:0", b"v1:a:b:60", b"\xff\xfe", b""])
async def test_a_garbled_entry_is_a_miss_never_a_pass(app, client, pool: asyncpg.Pool, settings: Settings,
                                                      project: Project, garbage: bytes) -> None:
    keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
    await app.state.redis.set(keys.record, garbage, ex=60)
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.status_code == 200  # PostgreSQL answered, and the entry is whole again
    assert await app.state.redis.get(keys.record) == tokencache.encode_record(
        project.token_id, project.id, 60).encode()
    # a revoked token behind a garbled entry is refused
    await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", project.token_id)
    await app.state.redis.set(keys.record, garbage, ex=60)
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401


async def test_unknown_digests_are_cached_as_unknown_briefly(
        app, client, settings: Settings, gate_pool: Counting) -> None:
    stranger = tokens.generate("live")  # well formed, never issued
    assert (await client.get("/api/v1/tasks", headers=bearer(stranger))).status_code == 401
    assert gate_pool.calls == ["fetchrow"]
    keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(stranger))
    assert await app.state.redis.get(keys.record) == b"x"
    assert 0 < await app.state.redis.ttl(keys.record) <= settings.unknown_token_ttl
    for _ in range(3):
        assert (await client.get("/api/v1/tasks", headers=bearer(stranger))).status_code == 401
    assert gate_pool.calls == ["fetchrow"]


async def test_last_used_moves_at_most_once_a_minute(app, client, pool: asyncpg.Pool, settings: Settings,
                                                     project: Project, gate_pool: Counting) -> None:
    assert await pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", project.token_id) is None
    for _ in range(5):
        assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    await app.state.gate.settled()
    assert gate_pool.calls.count("execute") == 1
    first = await pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", project.token_id)
    assert first is not None
    keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
    assert 0 < await app.state.redis.ttl(keys.used) <= 60
    # when the gate expires the next request records the use again
    await app.state.redis.delete(keys.used)
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    await app.state.gate.settled()
    assert gate_pool.calls.count("execute") == 2
    assert await pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", project.token_id) > first


async def test_every_key_is_prefixed_tagged_and_expires(app, client, pool: asyncpg.Pool, settings: Settings,
                                                        project: Project) -> None:
    for _ in range(3):
        await client.get("/api/v1/tasks", headers=project.headers)
    await client.get("/api/v1/tasks", headers=bearer(tokens.generate("test")))
    await tokens.revoke(pool, app.state.redis, settings.redis_prefix, project.id, project.token_id)
    await client.get("/api/v1/tasks", headers=project.headers)
    hexdigest = tokens.digest(project.token).hex()
    mine = [k async for k in app.state.redis.scan_iter(match=f"{settings.redis_prefix}tok:{{{hexdigest}}}:*")]
    assert {k.decode().rsplit(":", 1)[1] for k in mine} == {"rec", "tomb", "win", "used"}
    for key in mine:
        assert await app.state.redis.ttl(key) > 0
    failures = [k async for k in app.state.redis.scan_iter(match=f"{settings.redis_prefix}authfail:*")]
    assert failures
    for key in failures:
        assert await app.state.redis.ttl(key) > 0


async def test_a_revocation_that_missed_redis_is_swept_in(settings: Settings, pool: asyncpg.Pool,
                                                          project: Project) -> None:
    """The revoker could not reach Redis, but the replicas can: their sweep writes the tombstone."""
    async with app_client(settings, outbox_sweep_interval=0.05) as (app, client):
        assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
        unreachable = aioredis.from_url("redis://127.0.0.1:1/0")
        try:
            assert await tokens.revoke(pool, unreachable, settings.redis_prefix, project.id, project.token_id)
        finally:
            await unreachable.aclose()
        for _ in range(200):
            if await pool.fetchval("SELECT applied_at FROM token_invalidations WHERE token_id = $1",
                                   project.token_id) is not None:
                break
            await asyncio.sleep(0.02)
        assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
        assert app.state.gate.counters.outbox_replayed >= 1


async def test_a_revoke_that_rolled_back_leaves_the_token_working_uncached(
        app, client, pool: asyncpg.Pool, settings: Settings, project: Project) -> None:
    class RolledBack(Exception):
        pass

    async with pool.acquire() as conn:
        with pytest.raises(RolledBack):
            async with conn.transaction():
                assert await tokens.revoke(conn, app.state.redis, settings.redis_prefix, project.id,
                                           project.token_id)
                raise RolledBack
    assert await pool.fetchval("SELECT revoked_at FROM api_tokens WHERE id = $1", project.token_id) is None
    # the tombstone stays; PostgreSQL says valid, so the token works, limited, and is never cached
    keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
    answers = [await client.get("/api/v1/tasks", headers=project.headers) for _ in range(2)]
    assert [r.status_code for r in answers] == [200, 200]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["59", "58"]
    assert await app.state.redis.exists(keys.tombstone) and not await app.state.redis.exists(keys.record)
