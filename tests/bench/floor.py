"""The floor of the list endpoint: bare Starlette doing only the list's two round trips, through the
service's own drivers and settings, and answering the ceiling's constant body.

Per request: the authorize script (one EVALSHA through redis-py, the token's cached record and its
window) and the list statement with its total (one asyncpg statement on the service's pool). No
middleware, no parsing, no encoding: what the service costs above this is its own code; what this costs
above the ceiling is the two drivers and the servers behind them.

    python -m tests.bench.floor --port 8200 --workers 2      # DATABASE_URL, REDIS_URL, PATHPRO_REDIS_PREFIX
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import db, tokencache, tokens
from service.api import tasks
from service.ids import unique_id
from service.settings import Settings
from tests.bench import ceiling

_LIST_SQL = tasks._LIST_SQL.format(columns=tasks._COLUMNS, task_where="", count_where="")


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    settings = Settings.from_env()
    app.state.settings = settings
    app.state.pool = await db.create_pool(settings)
    client = aioredis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout,
                               socket_connect_timeout=settings.redis_timeout)
    app.state.scripts = tokencache.Scripts(client)
    try:
        yield
    finally:
        await client.aclose()
        await app.state.pool.close()


async def _list(request: Request) -> Response:
    state = request.app.state
    token = request.headers["authorization"].partition(" ")[2]
    token_digest = tokens.digest(token)
    keys = tokencache.token_keys(state.settings.redis_prefix, token_digest).all
    args = [tokencache.WINDOW_US, unique_id(), tokencache.LAST_USED_GATE_SECONDS, ""]
    reply = await state.scripts.authorize(keys=keys, args=args)
    if reply[0] == b"ok":
        project_id = tokencache.decode_record(reply[1])[1]  # type: ignore[index]
    else:  # once per cache lifetime: fill it as the service does
        record = await tokens.lookup(state.pool, token_digest)
        assert record is not None
        project_id = record.project_id
        value = tokencache.encode_record(record.token_id, record.project_id, record.rate_limit)
        await state.scripts.fill(keys=keys, args=[value, state.settings.token_cache_ttl, *args])
    await state.pool.fetch(_LIST_SQL, project_id, tasks.PER_PAGE + 1, 0)
    return Response(ceiling.BODY, media_type="application/json")


async def _ready(request: Request) -> Response:
    return Response(ceiling.BODY, media_type="application/json")  # what the harness polls until a server is up


def make_app() -> Starlette:
    return Starlette(routes=[Route("/api/v1/openapi.json", _ready, methods=["GET"]),
                             Route("/{path:path}", _list, methods=["GET"])], lifespan=_lifespan)


def main() -> None:
    ceiling.main("tests.bench.floor:make_app")

if __name__ == "__main__":
    main()
