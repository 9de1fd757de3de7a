"""One JSON log line and the request metrics for every HTTP request (pure ASGI, like service/middleware.py).

Being outermost, it also answers a request that the server cancels at the end of a graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceUnavailable, error_response
from service.metrics import LATENCY, REQUESTS

log = logging.getLogger("pathpro.access")

# Probes and scrapes arrive every few seconds from machines, not customers: counted, never logged.
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
_encoder = msgspec.json.Encoder()


class _BatchedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the lines of one event-loop turn with one write: on a busy replica a system call per
    request cost more than everything else the log and the metrics do."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if len(self._pending) > 1:
            return  # a flush is already due
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no event loop in this thread: write at once
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._pending = self._pending, []
            if lines:
                self.stream.write("\n".join(lines) + "\n")
            super().flush()


def configure() -> None:
    """Send access lines to stderr as they are (each is already JSON); once per process."""
    if not log.handlers:
        # The logging HOWTO's optimisations: no line of ours prints the caller, thread or process, and
        # finding them is most of what a record costs
        logging._srcfile = None
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        handler = _BatchedStream()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(ServiceUnavailable("The server is shutting down. Retry shortly.",
                                                 headers={"Retry-After": "1", "Connection": "close"}))
    request_id = (scope.get("state") or {}).get("request_id")
    if request_id:
        response.headers["X-Request-Id"] = request_id
    await response(scope, receive, send)


_TEMPLATES: dict[Any, str] = {}  # endpoint -> its route's path template
_UNROUTED: dict[str, str] = {}  # path of a request refused before routing -> the template it would reach


def _route(scope: Scope) -> str:
    # the template, not the path: /api/v1/tasks/{task_id} is one series whatever the id, and a
    # fuzzer's random paths all land on one "unmatched" series
    endpoint = scope.get("endpoint")
    template = _TEMPLATES.get(endpoint)
    if template is not None:
        return template
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    if endpoint is not None:
        # routed: the router left its endpoint in the scope; each endpoint serves one path
        for candidate in routes:
            if getattr(candidate, "endpoint", None) is endpoint:
                _TEMPLATES[endpoint] = template = candidate.path
                return template
    # refused before routing (401, 413, 429): find the route it would have reached, once per path
    path: str = scope.get("path", "")
    template = _UNROUTED.get(path)
    if template is None:
        template = "unmatched"
        for candidate in routes:
            if candidate.matches(scope)[0] is not Match.NONE:
                found = getattr(candidate, "path", None)
                template = found if isinstance(found, str) else "unmatched"
                break
        if len(_UNROUTED) >= 4096:  # a flood of random paths cannot grow it without bound
            _UNROUTED.clear()
        _UNROUTED[path] = template
    return template


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_and_watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except asyncio.CancelledError:
            if started:
                raise
            # The server cancels what is still running when the graceful-shutdown timeout runs out. The
            # transaction was rolled back with the cancelled task, so the client may safely try again
            # (on another replica): say so in JSON rather than the server's plain-text 500.
            status = 503
            await _unavailable(scope, receive, send)
        finally:
            # an exception escaping here becomes the server's 500, so 500 is what gets recorded
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route(scope)
        method: str = scope["method"]
        labels = (method, route, str(status))
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(seconds)
        if scope.get("path") in _QUIET:
            return
        state: dict[str, Any] = scope.get("state") or {}
        token = state.get("token")
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": "request",
            "request_id": state.get("request_id"),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            # the token's id, never the token
            "token_id": getattr(token, "token_id", None),
            "project_id": getattr(token, "project_id", None),
        }
        log.info(_encoder.encode(line).decode())
