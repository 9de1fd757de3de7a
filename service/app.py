"""create_app(settings): routes, middleware, error handlers and the pools' lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from service import accesslog, db, health, metrics, web
from service.api import openapi, task_groups, tasks
from service.errors import ApiError, error_response, http_error
from service.middleware import ApiAuth, RequestContext
from service.requestgate import RequestGate
from service.settings import Settings

log = logging.getLogger("pathpro")


def _answer(request: Request, err: ApiError) -> Response:
    # pages get an HTML page (or a redirect to sign in); the API and the pages' JSON endpoints get JSON
    return web.error_page(request, err) or error_response(err)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _answer(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return _answer(request, http_error(exc.status_code, headers))


def _allowed_methods(request: Request) -> str:
    """Every method the path answers: each method is a Route of its own, so Starlette's Allow names one."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _unexpected(request: Request, exc: Exception) -> Response:
    known = db.translate(exc)
    if known is not None:
        return _answer(request, known)
    # the traceback goes to the log, never to the client
    log.exception("unhandled error", extra={"request_id": request.scope.get("state", {}).get("request_id")})
    return _answer(request, ApiError())


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = await db.create_pool(settings)
        # short socket timeouts: a Redis that stops answering costs a request half a second, not a hang
        app.state.redis = redis.from_url(settings.redis_url, socket_connect_timeout=settings.redis_timeout,
                                         socket_timeout=settings.redis_timeout)
        app.state.gate = RequestGate(app.state.pool, settings)
        await app.state.gate.start()
        try:
            yield
        finally:
            await app.state.gate.close()
            await app.state.redis.aclose()
            await app.state.pool.close()

    routes = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/api/v1/tasks", tasks.list_tasks, methods=["GET"]),
        Route("/api/v1/tasks", tasks.create_task, methods=["POST"]),
        Route("/api/v1/tasks/{task_id}", tasks.get_task, methods=["GET"]),
        Route("/api/v1/tasks/{task_id}", tasks.update_task, methods=["PUT"]),
        Route("/api/v1/tasks/{task_id}", tasks.delete_task, methods=["DELETE"]),
        Route("/api/v1/task_groups", task_groups.list_task_groups, methods=["GET"]),
        *web.routes(),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(accesslog.RequestLog),
            Middleware(RequestContext, max_body_bytes=settings.max_body_bytes),
            Middleware(ApiAuth),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            # database and network failures are answered inside the app, so they never reach the
            # server-error layer that logs them as crashes
            asyncpg.PostgresError: _unexpected,
            asyncpg.InterfaceError: _unexpected,
            asyncpg.exceptions.InternalClientError: _unexpected,
            OSError: _unexpected,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """The factory `pathpro serve` hands to uvicorn, so every worker reads the same environment."""
    accesslog.configure()
    return create_app(Settings.from_env())
