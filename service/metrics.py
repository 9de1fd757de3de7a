"""Prometheus metrics, and the /metrics endpoint that exposes them.

With `pathpro serve --workers N` (N > 1) every worker is a process of its own: `serve` then points
PROMETHEUS_MULTIPROC_DIR at a fresh folder before the workers start, each worker writes its samples
there, and whichever worker answers /metrics reports the sum over all of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter(
    "pathpro_http_requests_total", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "pathpro_http_request_duration_seconds", "Time from request start to the end of the response.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Incremented by the rate limiter when it refuses a request (429).
RATE_LIMITED = Counter("pathpro_rate_limited_total", "Requests refused by the rate limit.")
# Incremented by the token cache: result="hit" when Redis had the token's record, "miss" when PostgreSQL
# was asked.
TOKEN_CACHE = Counter("pathpro_token_cache_total", "Token cache look-ups, by result.", ["result"])
# Incremented when Redis could not be reached and the request was served without it.
REDIS_FALLBACK = Counter("pathpro_redis_fallback_total", "Requests served without Redis because it was unreachable.")
POOL_IN_USE = Gauge(
    "pathpro_db_pool_in_use", "PostgreSQL pool connections handed out to requests right now.",
    multiprocess_mode="livesum",
)


@contextlib.contextmanager
def multiprocess_metrics(workers: int) -> Iterator[None]:
    """Around uvicorn with several workers: a shared, empty folder for their samples."""
    if workers <= 1:
        yield
        return
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        # samples of a previous run would be summed in
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
        yield
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pathpro-metrics-")
    try:
        yield
    finally:
        shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
