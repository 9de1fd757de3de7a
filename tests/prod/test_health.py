"""The probes: no token, no data, and what they say when a backing service is down."""

from __future__ import annotations

import dataclasses

from service.app import create_app
from service.settings import Settings
from tests.conftest import free_port


async def test_healthz_answers_without_a_token(client) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"


async def test_readyz_reports_both_backends(client) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


async def test_probes_ignore_a_bad_token(client) -> None:
    for path in ("/healthz", "/readyz"):
        r = await client.get(path, headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 200, path


async def test_readyz_is_200_and_degraded_without_redis(settings: Settings) -> None:
    # nothing listens on this port: Redis is "down" from the first request
    no_redis = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(no_redis)
    import httpx

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "postgres": "ok", "redis": "down"}


async def test_probes_are_not_rate_limited(client, project) -> None:
    # more than a token's default 60 a minute, with and without the project's token
    for i in range(70):
        headers = project.headers if i % 2 else {}
        assert (await client.get("/readyz" if i % 3 else "/healthz", headers=headers)).status_code == 200
