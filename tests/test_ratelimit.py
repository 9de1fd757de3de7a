"""The sliding window: its model, the Lua on exact boundaries, the headers, the limits' precedence, the
per-address limit on failed authentication, and the fallback while Redis is unreachable."""

from __future__ import annotations

import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from service import ratelimit, tokencache, tokens
from service.ratelimit import LocalWindow
from service.settings import Settings
from service.tokencache import WINDOW_US
from tests.conftest import Project, make_project
from tests.reqpath_support import app_client, bearer, private_redis

N_MAX = 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def run_model(arrivals: list[int], limit: int) -> list[bool]:
    clock = FakeClock()
    window = LocalWindow(clock=clock)
    out = []
    for t in arrivals:
        clock.now = t
        out.append(window.hit("k", limit).allowed)
    return out


arrival_lists = st.lists(st.integers(min_value=0, max_value=3 * WINDOW_US), min_size=1,
                         max_size=60).map(sorted)
# bursts: many arrivals in the same microsecond or a few apart, and others near the window's edges
edge_lists = st.lists(
    st.sampled_from([0, 1, WINDOW_US - 1, WINDOW_US, WINDOW_US + 1, 2 * WINDOW_US - 1, 2 * WINDOW_US]),
    min_size=1, max_size=40).map(sorted)


@hsettings(deadline=None)  # a busy shared machine must not fail a test of logic
@given(arrivals=st.one_of(arrival_lists, edge_lists), limit=st.integers(1, N_MAX))
def test_model_no_interval_of_60s_admits_more_than_n(arrivals: list[int], limit: int) -> None:
    admitted = [t for t, ok in zip(arrivals, run_model(arrivals, limit), strict=True) if ok]
    # any half-open interval [t, t + 60 s) holds at most N admitted requests
    for i in range(len(admitted) - limit):
        assert admitted[i + limit] >= admitted[i] + WINDOW_US


@hsettings(deadline=None)  # a busy shared machine must not fail a test of logic
@given(arrivals=st.one_of(arrival_lists, edge_lists), limit=st.integers(1, N_MAX))
def test_model_refuses_only_a_client_over_its_limit(arrivals: list[int], limit: int) -> None:
    decisions = run_model(arrivals, limit)
    for i, (t, ok) in enumerate(zip(arrivals, decisions, strict=True)):
        if not ok:
            # refused: it had already sent N requests in the 60 s ending now...
            assert sum(1 for s in arrivals[:i] if s > t - WINDOW_US) >= limit
            # ...and N of them were admitted (refused ones used nothing up)
            admitted = [s for s, a in zip(arrivals[:i], decisions, strict=False) if a and s > t - WINDOW_US]
            assert len(admitted) == limit


@hsettings(deadline=None)  # a busy shared machine must not fail a test of logic
@given(arrivals=st.one_of(arrival_lists, edge_lists), limit=st.integers(1, N_MAX))
def test_model_a_client_within_its_limit_is_never_refused(arrivals: list[int], limit: int) -> None:
    # keep only the arrivals of a client that never sends more than N in any 60 s
    polite: list[int] = []
    for t in arrivals:
        if sum(1 for s in polite if s > t - WINDOW_US) < limit:
            polite.append(t)
    assert all(run_model(polite, limit))


@pytest.fixture(scope="module")
def sync_redis(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrivals=st.one_of(arrival_lists, edge_lists), limit=st.integers(1, N_MAX))
def test_the_lua_decides_as_the_model_does(sync_redis: Any, settings: Settings, arrivals: list[int],
                                           limit: int) -> None:
    script = sync_redis.register_script(tokencache.SOURCES["limit"])
    key = f"{settings.redis_prefix}model:{{{uuid.uuid4().hex}}}"
    base = 1_700_000_000_000_000
    clock = FakeClock()
    model = LocalWindow(clock=clock)
    for t in arrivals:
        clock.now = base + t
        expected = model.hit("k", limit)
        allowed, remaining, reset, at = script(keys=[key],
                                               args=[limit, WINDOW_US, uuid.uuid4().hex, clock.now, "1"])
        assert (bool(allowed), remaining, reset, at) == (expected.allowed, expected.remaining,
                                                          expected.reset_us, expected.now_us)
    # refused requests left nothing behind: the set holds exactly the admitted ones still in the window
    assert sync_redis.zcard(key) == limit - model.hit("k", limit, add=False).remaining
    sync_redis.delete(key)


def _authorize(sync_redis: Any, keys: tokencache.TokenKeys, now: int) -> ratelimit.Decision:
    script = sync_redis.register_script(tokencache.SOURCES["authorize"])
    reply = script(keys=keys.all, args=[WINDOW_US, uuid.uuid4().hex, 60, now])
    assert reply[0] == b"ok"
    return ratelimit.from_script(3, *reply[2:6])


def test_exact_boundaries_on_the_request_script(sync_redis: Any, settings: Settings) -> None:
    keys = tokencache.token_keys(settings.redis_prefix, uuid.uuid4().bytes * 2)
    sync_redis.set(keys.record, tokencache.encode_record(1, 1, 3), ex=60)
    t0 = 1_800_000_000_000_000
    first = [_authorize(sync_redis, keys, t0 + dt) for dt in (0, 10, 20)]
    assert [(d.allowed, d.remaining, d.reset_us) for d in first] == [
        (True, r, t0 + WINDOW_US) for r in (2, 1, 0)]
    refused = _authorize(sync_redis, keys, t0 + 30)
    assert (refused.allowed, refused.remaining, refused.reset_us) == (False, 0, t0 + WINDOW_US)
    assert refused.retry_after == math.ceil((WINDOW_US - 30) / 1_000_000) == 60
    # refusals use up nothing, up to the microsecond before the oldest leaves
    for dt in (1_000_000, WINDOW_US // 2, WINDOW_US - 1):
        assert not _authorize(sync_redis, keys, t0 + dt).allowed
    assert sync_redis.zcard(keys.window) == 3
    # the oldest leaves at exactly t0 + 60 s: exactly one more passes
    at_edge = _authorize(sync_redis, keys, t0 + WINDOW_US)
    assert (at_edge.allowed, at_edge.remaining, at_edge.reset_us) == (True, 0, t0 + 10 + WINDOW_US)
    after = _authorize(sync_redis, keys, t0 + WINDOW_US)
    assert (after.allowed, after.reset_us) == (False, t0 + 10 + WINDOW_US)
    # Retry-After is honest: rounded up, a request then passes
    assert after.retry_after == 1
    assert _authorize(sync_redis, keys, t0 + WINDOW_US + after.retry_after * 1_000_000).allowed
    headers = dict(at_edge.headers())
    assert headers[b"x-ratelimit-reset"] == str(math.ceil((t0 + 10 + WINDOW_US) / 1e6)).encode()
    assert 0 < sync_redis.pttl(keys.window) <= WINDOW_US // 1000 + 1000
    sync_redis.delete(*keys.all)


def test_a_retried_call_counts_once(sync_redis: Any, settings: Settings) -> None:
    script = sync_redis.register_script(tokencache.SOURCES["limit"])
    key = f"{settings.redis_prefix}retry:{{{uuid.uuid4().hex}}}"
    now = 1_800_000_000_000_000
    assert script(keys=[key], args=[2, WINDOW_US, "same-member", now, "1"])[:2] == [1, 1]
    assert script(keys=[key], args=[2, WINDOW_US, "same-member", now + 5, "1"])[:2] == [1, 1]
    assert sync_redis.zcard(key) == 1
    sync_redis.delete(key)


async def test_headers_on_every_answer_and_the_429(client, pool: asyncpg.Pool) -> None:
    project = await make_project(pool, rate_limit=4)
    before = time.time()
    ok = await client.get("/api/v1/tasks", headers=project.headers)
    missing = await client.get("/api/v1/tasks/999999999", headers=project.headers)
    invalid = await client.post("/api/v1/tasks", headers=project.headers, json={"title": ""})
    last = await client.get("/api/v1/tasks", headers=project.headers)
    refused = await client.get("/api/v1/tasks", headers=project.headers)
    assert [r.status_code for r in (ok, missing, invalid, last, refused)] == [200, 404, 422, 200, 429]
    for r, remaining in zip((ok, missing, invalid, last, refused), (3, 2, 1, 0, 0), strict=True):
        assert r.headers["X-RateLimit-Limit"] == "4"
        assert r.headers["X-RateLimit-Remaining"] == str(remaining)
        assert r.headers["RateLimit-Policy"] == '"token";q=4;w=60'
        reset = int(r.headers["X-RateLimit-Reset"])
        assert before + 59 <= reset <= time.time() + 61
        t = int(r.headers["RateLimit"].split(";t=")[1])
        assert r.headers["RateLimit"] == f'"token";r={remaining};t={t}' and 0 <= t <= 60
        assert "X-Request-Id" in r.headers
    assert "Retry-After" not in last.headers
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    # the reset of every answer is the oldest request's second plus the window
    assert len({r.headers["X-RateLimit-Reset"] for r in (ok, missing, invalid, last, refused)}) == 1


async def test_token_override_beats_project_limit_and_tokens_do_not_share(
        app, client, pool: asyncpg.Pool, settings: Settings) -> None:
    project = await make_project(pool, rate_limit=3)
    _, own = await tokens.create(pool, project.id, "Own limit", "live", rate_limit=2)
    for expected in (200, 200, 429):
        assert (await client.get("/api/v1/tasks", headers=bearer(own))).status_code == expected
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.status_code == 200
    assert (r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"]) == ("3", "2")


# failed authentication, per client address


def _from(app: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://testserver")


async def test_failed_authentications_are_limited_per_address(settings: Settings, project: Project) -> None:
    async with app_client(settings, auth_failure_limit=3) as (app, _), _from(app, "203.0.113.9") as c:
        assert (await c.get("/api/v1/tasks", headers=project.headers)).status_code == 200
        codes = [(await c.get("/api/v1/tasks", headers=bearer(tokens.generate("live")))).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        # once over the limit an unknown token costs no PostgreSQL query
        gate = app.state.gate
        lookups = 0
        original = tokens.lookup

        async def counting(conn: Any, token_digest: bytes) -> Any:
            nonlocal lookups
            lookups += 1
            return await original(conn, token_digest)

        tokens.lookup = counting  # type: ignore[assignment]
        try:
            r = await c.get("/api/v1/tasks", headers=bearer(tokens.generate("live")))
        finally:
            tokens.lookup = original  # type: ignore[assignment]
        assert (r.status_code, lookups) == (429, 0)
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.json()["error"]["code"] == "rate_limited"
        # a cached valid token from the same address is not slowed down
        assert (await c.get("/api/v1/tasks", headers=project.headers)).status_code == 200
        assert gate.counters.fallback_requests == 0
        # malformed tokens are refused with no I/O, counted in-process against their address
    async with app_client(settings, auth_failure_limit=2) as (app, _), _from(app, "203.0.113.10") as c:
        codes = [(await c.get("/api/v1/tasks", headers=bearer("pk_live_nonsense"))).status_code
                 for _ in range(3)]
        assert codes == [401, 401, 429]
        # someone else's address is untouched
        async with _from(app, "203.0.113.11") as other:
            assert (await other.get("/api/v1/tasks")).status_code == 401


async def test_x_forwarded_for_only_from_trusted_proxies(settings: Settings) -> None:
    unknown = {"Authorization": f"Bearer {tokens.generate('live')}"}
    spoofed = [f"198.51.100.{i}" for i in range(3)]
    async with app_client(settings, auth_failure_limit=2) as (app, _), _from(app, "203.0.113.20") as c:
        codes = [(await c.get("/api/v1/tasks", headers={**unknown, "X-Forwarded-For": ip})).status_code
                 for ip in spoofed]
        assert codes == [401, 401, 429]  # the header is ignored: one address
    async with app_client(settings, auth_failure_limit=2, trusted_proxies=("10.0.0.0/8",)) as (app, _), \
            _from(app, "10.1.2.3") as proxy:
        codes = []
        for ip in spoofed:
            chain = f"6.6.6.6, {ip}, 10.9.9.9"  # what the client wrote, the client, a second proxy
            r = await proxy.get("/api/v1/tasks", headers={**unknown, "X-Forwarded-For": chain})
            codes.append(r.status_code)
        assert codes == [401, 401, 401]  # three clients behind the proxy
        codes = [(await proxy.get("/api/v1/tasks",
                                  headers={**unknown, "X-Forwarded-For": f"{spoofed[0]}"})).status_code
                 for _ in range(2)]
        assert codes == [401, 429]


def test_client_address_rules() -> None:
    trusted = ratelimit.parse_networks(["10.0.0.0/8", "::1"])
    scope = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, 10.0.0.7")]}
    assert ratelimit.client_address(scope, trusted) == "2.2.2.2"
    assert ratelimit.client_address({**scope, "client": ("8.8.8.8", 1)}, trusted) == "8.8.8.8"
    assert ratelimit.client_address(scope, ()) == "10.0.0.5"
    garbage = {**scope, "headers": [(b"x-forwarded-for", b"garbage")]}
    assert ratelimit.client_address(garbage, trusted) == "10.0.0.5"
    assert ratelimit.client_address({**scope, "headers": []}, trusted) == "10.0.0.5"


# Redis's own clock, script cache and absence


async def test_skewed_process_clocks_do_not_matter(settings: Settings, pool: asyncpg.Pool,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   redis_client: Any) -> None:
    project = await make_project(pool, rate_limit=4)
    real_time, real_ns = time.time, time.time_ns
    async with app_client(settings) as (_, ahead), app_client(settings) as (_, behind):
        answers = []
        for i in range(8):
            skew = 3600 if i % 2 else -3600  # an hour fast, then an hour slow
            monkeypatch.setattr(time, "time", lambda s=skew: real_time() + s)
            monkeypatch.setattr(time, "time_ns", lambda s=skew: real_ns() + s * 10**9)
            answers.append(await (ahead if i % 2 else behind).get("/api/v1/tasks", headers=project.headers))
        monkeypatch.undo()
    assert [r.status_code for r in answers] == [200] * 4 + [429] * 4
    redis_now, _ = await redis_client.time()
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in answers}
    assert len(resets) == 1 and redis_now + 55 <= resets.pop() <= redis_now + 61


async def test_script_flush_mid_run_counts_nothing_twice(settings: Settings, pool: asyncpg.Pool,
                                                         tmp_path: Path) -> None:
    project = await make_project(pool, rate_limit=6)
    with private_redis(tmp_path / "redis") as server:
        async with app_client(settings, redis_url=server.url) as (app, client):
            async def send(n: int) -> list[int]:
                return [(await client.get("/api/v1/tasks", headers=project.headers)).status_code
                        for _ in range(n)]

            codes = await send(3)
            server.client().script_flush()
            codes += await send(5)
            assert codes == [200] * 6 + [429] * 2
            keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
            assert server.client().zcard(keys.window) == 6
            assert app.state.gate.counters.redis_outages == 0


async def test_redis_unreachable_falls_back_and_revocation_holds(
        settings: Settings, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture) -> None:
    project = await make_project(pool, rate_limit=3)
    _, other = await tokens.create(pool, project.id, "Other", "live")
    dead = "redis://127.0.0.1:1/0"
    caplog.set_level(logging.WARNING, logger="pathpro")
    async with app_client(settings, redis_url=dead, redis_retry_interval=60) as (app, client):
        codes = [(await client.get("/api/v1/tasks", headers=project.headers)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await client.get("/api/v1/tasks", headers=project.headers)
        assert r.headers["X-RateLimit-Limit"] == "3" and int(r.headers["Retry-After"]) >= 1
        # revoking cannot reach Redis, and still revokes; the outbox keeps it for Redis's return
        unreachable = redis.asyncio.from_url(dead)
        try:
            assert await tokens.revoke(pool, unreachable, settings.redis_prefix, project.id, project.token_id)
        finally:
            await unreachable.aclose()
        assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
        assert (await client.get("/api/v1/tasks", headers=bearer(other))).status_code == 200
        assert (await client.get("/api/v1/tasks", headers=bearer(tokens.generate("live")))).status_code == 401
        counters = app.state.gate.counters
        assert counters.redis_outages == 1 and counters.fallback_requests == 8
    pending = await pool.fetchval("SELECT count(*) FROM token_invalidations WHERE token_id = $1 "
                                  "AND applied_at IS NULL", project.token_id)
    assert pending == 1
    outage_lines = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()
                    and r.name == "pathpro.requestgate"]
    assert len(outage_lines) == 1
    assert project.token not in caplog.text and other not in caplog.text


async def test_the_openapi_document_declares_the_headers(client) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    declared = document["components"]["headers"]
    assert "when X-RateLimit-Remaining next goes up" in declared["X-RateLimit-Reset"]["description"]
    assert declared["Retry-After"]["schema"]["minimum"] == 1
    for path in document["paths"].values():
        for method, operation in path.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert set(responses["429"]["headers"]) == {"X-RateLimit-Limit", "X-RateLimit-Remaining",
                                                        "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit",
                                                        "Retry-After"}
            success = next(r for status, r in responses.items() if status.startswith("2"))
            assert "X-RateLimit-Reset" in success["headers"]
            assert "headers" not in responses["401"] or "X-RateLimit-Limit" not in responses["401"]["headers"]
