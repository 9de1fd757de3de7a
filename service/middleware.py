"""Pure ASGI middleware: request ids, the body-size limit, and Bearer auth for the API.

Pure ASGI rather than BaseHTTPMiddleware, which costs a task per request.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import translate
from service.errors import ApiError, PayloadTooLarge, RateLimited, error_response
from service.ids import unique_id
from service.metrics import RATE_LIMITED
from service.requestgate import RequestGate

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


class RequestContext:
    """Gives every response an X-Request-Id and refuses bodies over the size limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = _header(scope, b"x-request-id")
        request_id = sent.decode("latin-1") if sent and _SANE_REQUEST_ID.fullmatch(sent.decode("latin-1")) \
            else unique_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await error_response(PayloadTooLarge())(scope, receive, send_with_id)
            return

        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge()
            return message

        await self.app(scope, limited_receive, send_with_id)


class ApiAuth:
    """Admits every /api/v1 request but the document's: a valid Bearer token within its rate limit.

    The work is service.requestgate's (one Redis script call for a cached token); this layer puts the
    token's record in the scope and the window's headers on every response to a request with a valid
    token, 2xx, 4xx and 429 alike.
    """

    PUBLIC = frozenset({"/api/v1/openapi.json"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path in self.PUBLIC:
            await self.app(scope, receive, send)
            return
        gate: RequestGate = scope["app"].state.gate
        try:
            admission = await gate.admit(scope)
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except Exception as exc:
            known = translate(exc)
            if known is None:
                raise
            await error_response(known)(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = admission.token
        limit_headers = admission.decision.headers()

        async def send_with_limit(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *limit_headers]
            await send(message)

        if not admission.decision.allowed:
            RATE_LIMITED.inc()
            await error_response(RateLimited())(scope, receive, send_with_limit)
            return
        await self.app(scope, receive, send_with_limit)
