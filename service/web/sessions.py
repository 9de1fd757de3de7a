"""Server-side sessions in Redis.

The cookie carries only a random id. Redis keeps the session under the id's SHA-256, so a key listing
(SCAN, MONITOR, a snapshot) never shows an id that would work as a cookie.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from service import ratelimit
from service.errors import ApiError, ServiceUnavailable

COOKIE = "pathpro_session"
ANONYMOUS_TTL = 30 * 60  # a session that only carries a sign-in form's CSRF token
IDLE_TTL = 12 * 3600  # signed in: ends after this long without a request
MAX_AGE = 7 * 24 * 3600  # signed in: ends this long after sign-in, however active
ONCE_TTL = 5 * 60  # a value shown once (a new token) waits this long for the page that shows it
# Anonymous sessions are made for anyone who asks for the sign-in form, so a client that drops its cookie
# each time could fill Redis with them: an address may start this many per ANONYMOUS_TTL.
ANONYMOUS_PER_ADDRESS = 300

_SID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


class Session(msgspec.Struct, omit_defaults=True):
    csrf: str
    created: float
    user_id: int | None = None
    email: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Current:
    sid: str
    data: Session


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Session)


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except RedisError:
        raise ServiceUnavailable(headers={"Retry-After": "5"}) from None


def _key(request: Request, kind: str, sid: str) -> str:
    prefix: str = request.app.state.settings.redis_prefix
    return f"{prefix}{kind}:{hashlib.sha256(sid.encode()).hexdigest()}"


async def load(request: Request) -> Current | None:
    """The request's live session, or None (no cookie, unknown, garbled or expired)."""
    sid = request.cookies.get(COOKIE, "")
    if not _SID.fullmatch(sid):
        return None
    r = request.app.state.redis
    key = _key(request, "session", sid)
    with _redis_errors():
        raw = await r.get(key)
        if raw is None:
            return None
        try:
            data = _decoder.decode(raw)
        except msgspec.DecodeError:
            await r.delete(key)
            return None
        if data.user_id is not None:
            if time.time() - data.created > MAX_AGE:
                await r.delete(key)
                return None
            await r.expire(key, IDLE_TTL)
    return Current(sid, data)


class TooManySessions(ApiError):
    status = 429
    code = "too_many_sessions"
    message = "Too many sign-in forms requested from this address. Keep the cookie, or wait and try again."
    default_headers = {"Retry-After": str(ANONYMOUS_TTL)}


async def start(request: Request, data: Session) -> Current:
    """Store a session under a new id; the caller sets the cookie."""
    sid = secrets.token_urlsafe(32)
    r = request.app.state.redis
    prefix: str = request.app.state.settings.redis_prefix
    with _redis_errors():
        if data.user_id is None:
            counter = f"{prefix}anonymous:{client_address(request)}"
            pipe = r.pipeline(transaction=True)
            pipe.incr(counter)
            pipe.expire(counter, ANONYMOUS_TTL, nx=True)
            started, _ = await pipe.execute()
            if int(started) > ANONYMOUS_PER_ADDRESS:
                raise TooManySessions()
        ttl = IDLE_TTL if data.user_id is not None else ANONYMOUS_TTL
        await r.set(_key(request, "session", sid), _encoder.encode(data), ex=ttl)
    return Current(sid, data)


def _https(request: Request) -> bool:
    return ratelimit.forwarded_https(request.scope, request.app.state.gate.trusted)


def client_address(request: Request) -> str:
    """The visitor's address, believing X-Forwarded-For only from the configured trusted proxies."""
    return ratelimit.client_address(request.scope, request.app.state.gate.trusted)


async def end(request: Request, sid: str) -> None:
    with _redis_errors():
        await request.app.state.redis.delete(_key(request, "session", sid), _key(request, "once", sid))


def anonymous() -> Session:
    return Session(csrf=secrets.token_urlsafe(32), created=time.time())


def signed_in(user_id: int, email: str, name: str) -> Session:
    return Session(csrf=secrets.token_urlsafe(32), created=time.time(), user_id=user_id, email=email,
                   name=name)


def set_cookie(response: Response, request: Request, current: Current) -> None:
    response.set_cookie(
        COOKIE,
        current.sid,
        max_age=MAX_AGE if current.data.user_id is not None else ANONYMOUS_TTL,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_https(request),
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                           secure=_https(request))


async def hold_once(request: Request, current: Current, value: bytes) -> None:
    """Keep `value` for the session's next `take_once`, and no longer than ONCE_TTL."""
    with _redis_errors():
        await request.app.state.redis.set(_key(request, "once", current.sid), value, ex=ONCE_TTL)


async def take_once(request: Request, current: Current) -> bytes | None:
    with _redis_errors():
        value: bytes | None = await request.app.state.redis.getdel(_key(request, "once", current.sid))
    return value
