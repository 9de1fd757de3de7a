"""Liveness and readiness probes: no token, no rate limit, no data beyond what is reachable.

/healthz says the process answers (restart it when this fails). /readyz says whether it can serve:
PostgreSQL is required (503 without it), Redis only makes it faster and shared (200, "degraded").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("pathpro")

# a probe must answer well within a load balancer's probe timeout, whatever the backends do
_CHECK_TIMEOUT = 1.0
_HEADERS = {"Cache-Control": "no-store"}
_encoder = msgspec.json.Encoder()


class Readiness(msgspec.Struct):
    status: str  # "ok", "degraded" (Redis down) or "unavailable" (PostgreSQL down)
    postgres: str  # "ok" or "down"
    redis: str  # "ok" or "down"


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json", headers=_HEADERS)


async def _reachable(what: str, check: Awaitable[Any]) -> bool:
    try:
        await asyncio.wait_for(check, _CHECK_TIMEOUT)
        return True
    except Exception as exc:
        # the reason goes to the log only: the probe's body names what is down, not why
        log.warning("readiness: %s unreachable: %s", what, type(exc).__name__)
        return False


async def readyz(request: Request) -> Response:
    state = request.app.state
    postgres, redis = await asyncio.gather(
        _reachable("postgres", state.pool.fetchval("SELECT 1")),
        _reachable("redis", state.redis.ping()),
    )
    status = "ok" if postgres and redis else "degraded" if postgres else "unavailable"
    body = Readiness(status, "ok" if postgres else "down", "ok" if redis else "down")
    return Response(_encoder.encode(body), status_code=200 if postgres else 503,
                    media_type="application/json", headers=_HEADERS)
