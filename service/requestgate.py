"""Who may make this API request, and may they make it now: the token and its window, in one Redis call.

A cached token costs one script call and no PostgreSQL round trip. A miss asks PostgreSQL and fills the
cache with a script that refuses to write a valid record beside a tombstone. While Redis is unreachable
every request asks PostgreSQL (so revocation holds) and the window is kept in this process; the first
request after Redis answers again replays the revocation outbox before anything is served from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from starlette.types import Scope

from service import ratelimit, tokencache, tokens
from service.errors import ApiError, RateLimited, Unauthorized
from service.ids import unique_id
from service.metrics import REDIS_FALLBACK, TOKEN_CACHE
from service.ratelimit import Decision, LocalWindow
from service.settings import Settings
from service.tokencache import LAST_USED_GATE_SECONDS, UNKNOWN, WINDOW_US

log = logging.getLogger("pathpro.requestgate")


class NotSynced(RedisConnectionError):
    """A connection reached a Redis server this process has not replayed the outbox into (a restart, a
    restored snapshot, a promoted replica): nothing may be served from its cache until the replay."""


class TooManyFailures(RateLimited):
    message = "Too many requests without a valid token from this address. Retry after Retry-After seconds."


@dataclass
class Counters:
    """For the metrics endpoint: how often, and for how many requests, Redis could not be used."""

    redis_outages: int = 0
    fallback_requests: int = 0
    outbox_replayed: int = 0


@dataclass(frozen=True, slots=True)
class Admission:
    token: tokens.TokenRecord
    decision: Decision


@dataclass
class _State:
    synced_run_id: str | None = None
    healthy: bool = False
    down: bool = False  # an outage has been logged and not yet its end
    next_probe: float = 0.0
    last_marked: dict[int, float] = field(default_factory=dict)


def _run_id(info: bytes | str) -> str:
    text = info.decode() if isinstance(info, bytes) else info
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line[len("run_id:"):].strip()
    return ""


_MARK_USED_SQL = "UPDATE api_tokens SET last_used_at = now() WHERE id = $1"


class RequestGate:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.prefix = settings.redis_prefix
        self.trusted = ratelimit.parse_networks(settings.trusted_proxies)
        self.counters = Counters()
        self.local = LocalWindow()
        self._state = _State()
        self._tasks: set[asyncio.Task[Any]] = set()  # last-used writes under way
        self._sweeper: asyncio.Task[None] | None = None
        options: dict[str, Any] = {
            "socket_timeout": settings.redis_timeout,
            "socket_connect_timeout": settings.redis_timeout,
            # one quick retry rides over a dropped connection; the scripts are safe to run twice
            "retry": Retry(NoBackoff(), 1),
        }
        # `sync` talks to Redis through its own client; the request path's client refuses connections to
        # a server it has not synced with
        self.sync_client = aioredis.from_url(settings.redis_url, **options)
        self.redis = aioredis.from_url(settings.redis_url, redis_connect_func=self._on_connect, **options)
        self.scripts = tokencache.Scripts(self.redis)

    # lifecycle

    async def start(self) -> None:
        await self._probe()
        self._sweeper = asyncio.create_task(self._sweep())

    async def settled(self) -> None:
        """Waits for the last-used writes under way."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.settled()
        await self.redis.aclose()
        await self.sync_client.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def revoke(self, project_id: int, token_id: int) -> bool:
        """tokens.revoke through this replica's Redis client, whose short timeouts keep the revoking
        transaction short when Redis is unreachable; what the web pages call."""
        return await tokens.revoke(self.pool, self.sync_client, self.prefix, project_id, token_id,
                                   tombstone_ttl=self.settings.tombstone_ttl)

    # the request path

    async def admit(self, scope: Scope) -> Admission:
        """The token's record and this request's decision; raises Unauthorized or TooManyFailures."""
        token = _bearer(scope)
        address = ratelimit.client_address(scope, self.trusted)
        # garbage is refused with no I/O at all; its address's failures are counted in this process
        if token is None or not tokens.well_formed(token):
            raise self._local_failure(address)
        token_digest = tokens.digest(token)
        if await self._redis_usable():
            try:
                return await self._through_cache(token_digest, address)
            except RedisError as exc:
                self._lost(exc)
        return await self._through_postgres(token_digest, address)

    async def _through_cache(self, token_digest: bytes, address: str) -> Admission:
        keys = tokencache.token_keys(self.prefix, token_digest)
        reply = await self.scripts.authorize(
            keys=keys.all, args=[WINDOW_US, unique_id(), LAST_USED_GATE_SECONDS, ""])
        status = reply[0]
        if status == b"ok":
            admitted = self._admitted(reply)
            if admitted is not None:
                TOKEN_CACHE.labels("hit").inc()
                return admitted
        elif status == b"unknown":
            TOKEN_CACHE.labels("hit").inc()
            raise await self._failure(address)
        TOKEN_CACHE.labels("miss").inc()
        # a miss, or a garbled entry (never a pass): PostgreSQL decides, unless this address is spraying
        await self._refuse_if_spraying(address)
        record = await tokens.lookup(self.pool, token_digest)
        if record is None:
            await self.scripts.fill(keys=keys.all, args=[UNKNOWN, self.settings.unknown_token_ttl, WINDOW_US,
                                                         unique_id(), LAST_USED_GATE_SECONDS, ""])
            raise await self._failure(address)
        value = tokencache.encode_record(record.token_id, record.project_id, record.rate_limit)
        reply = await self.scripts.fill(keys=keys.all, args=[value, self.settings.token_cache_ttl, WINDOW_US,
                                                             unique_id(), LAST_USED_GATE_SECONDS, ""])
        if reply[0] == b"ok":
            admitted = self._admitted(reply)
            if admitted is not None:
                return admitted
        # A tombstone: a revoke is under way or has just committed, and our read may predate it. Ask
        # again, and serve without caching if the token is still valid (the revoke rolled back).
        record = await tokens.lookup(self.pool, token_digest)
        if record is None:
            raise await self._failure(address)
        window = await self.scripts.limit(keys=[keys.window],
                                          args=[record.rate_limit, WINDOW_US, unique_id(), "", "1"])
        return Admission(record, ratelimit.from_script(record.rate_limit, *window))

    def _admitted(self, reply: list[Any]) -> Admission | None:
        decoded = tokencache.decode_record(reply[1])
        if decoded is None:
            return None
        token_id, project_id, rate_limit = decoded
        allowed, remaining, reset_us, now_us, mark = reply[2:7]
        if mark:
            self._spawn(self._mark_used(token_id))
        return Admission(tokens.TokenRecord(token_id, project_id, rate_limit),
                         ratelimit.from_script(rate_limit, allowed, remaining, reset_us, now_us))

    async def _through_postgres(self, token_digest: bytes, address: str) -> Admission:
        self.counters.fallback_requests += 1
        REDIS_FALLBACK.inc()
        if not self.local.hit(f"a:{address}", self.settings.auth_failure_limit, add=False).allowed:
            raise self._local_failure(address)
        record = await tokens.lookup(self.pool, token_digest)
        if record is None:
            raise self._local_failure(address)
        now = time.monotonic()
        if now - self._state.last_marked.get(record.token_id, -1e9) >= LAST_USED_GATE_SECONDS:
            self._state.last_marked[record.token_id] = now
            self._spawn(self._mark_used(record.token_id))
        return Admission(record, self.local.hit(f"t:{record.token_id}", record.rate_limit))

    # failed authentications, per client address

    async def _failure(self, address: str) -> ApiError:
        """Unauthorized, counted against the address; TooManyFailures once the address is over its limit."""
        if self._state.healthy:
            try:
                reply = await self.scripts.limit(
                    keys=[tokencache.address_key(self.prefix, address)],
                    args=[self.settings.auth_failure_limit, WINDOW_US, unique_id(), "", "1"])
                decision = ratelimit.from_script(self.settings.auth_failure_limit, *reply)
                return Unauthorized() if decision.allowed else _too_many(decision)
            except RedisError as exc:
                self._lost(exc)
        return self._local_failure(address)

    def _local_failure(self, address: str) -> ApiError:
        decision = self.local.hit(f"a:{address}", self.settings.auth_failure_limit)
        return Unauthorized() if decision.allowed else _too_many(decision)

    async def _refuse_if_spraying(self, address: str) -> None:
        reply = await self.scripts.limit(
            keys=[tokencache.address_key(self.prefix, address)],
            args=[self.settings.auth_failure_limit, WINDOW_US, unique_id(), "", "0"])
        decision = ratelimit.from_script(self.settings.auth_failure_limit, *reply)
        if not decision.allowed:
            raise _too_many(decision)

    # last used, at most once a minute per token

    async def _mark_used(self, token_id: int) -> None:
        try:
            await self.pool.execute(_MARK_USED_SQL, token_id)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("could not record last use of token %s: %s", token_id, type(exc).__name__)

    # Redis's health and the outbox

    async def _on_connect(self, conn: Any) -> None:
        await conn.on_connect()
        await conn.send_command("INFO", "server")
        run_id = _run_id(await conn.read_response())
        if run_id != self._state.synced_run_id:
            raise NotSynced(f"Redis server {run_id or '?'} has not been synced with the outbox")

    async def _redis_usable(self) -> bool:
        if self._state.healthy:
            return True
        if time.monotonic() < self._state.next_probe:
            return False
        return await self._probe()

    async def _probe(self) -> bool:
        self._state.next_probe = time.monotonic() + self.settings.redis_retry_interval
        try:
            await self.sync()
        except RedisError as exc:
            self._lost(exc)
            return False
        if self._state.down:
            self._state.down = False
            log.warning("Redis answers again; the shared rate limit and the token cache are back")
        self._state.healthy = True
        return True

    async def sync(self) -> None:
        """Apply the revocations Redis may have missed, then let the request path use this server.

        Pending ones always; the recent ones too when this server's run id is not the one the outbox was
        last replayed into (a restart can bring back records filled before a revoke)."""
        run_id = str((await self.sync_client.info("server"))["run_id"])
        marker = tokencache.sync_marker_key(self.prefix)
        fresh = (await self.sync_client.get(marker)) != run_id.encode()
        self.counters.outbox_replayed += await tokencache.replay(
            self.pool, self.sync_client, self.prefix, cache_ttl=self.settings.token_cache_ttl,
            tombstone_ttl=self.settings.tombstone_ttl, pending_only=not fresh)
        if fresh:
            await self.sync_client.set(marker, run_id, ex=self.settings.tombstone_ttl)
        self._state.synced_run_id = run_id

    def _lost(self, exc: Exception) -> None:
        if isinstance(exc, NotSynced):
            # a new Redis server: replay on the very next request
            self._state.healthy = False
            self._state.next_probe = 0.0
            log.warning("Redis restarted or changed; replaying revocations before using its cache")
            return
        if not self._state.down:
            # logged once per outage; every request served meanwhile is counted
            self._state.down = True
            self.counters.redis_outages += 1
            log.warning("Redis is unreachable (%s); asking PostgreSQL and limiting in-process until it is "
                        "back", type(exc).__name__)
        self._state.healthy = False
        self._state.next_probe = time.monotonic() + self.settings.redis_retry_interval

    async def _sweep(self) -> None:
        """Revocations made while Redis was unreachable from the revoker, applied within seconds."""
        rounds = 0
        while True:
            await asyncio.sleep(self.settings.outbox_sweep_interval)
            rounds += 1
            if not self._state.healthy:
                continue
            try:
                self.counters.outbox_replayed += await tokencache.replay(
                    self.pool, self.sync_client, self.prefix, cache_ttl=self.settings.token_cache_ttl,
                    tombstone_ttl=self.settings.tombstone_ttl, pending_only=True)
                if rounds % 100 == 0:
                    await tokencache.prune(self.pool, cache_ttl=self.settings.token_cache_ttl,
                                           tombstone_ttl=self.settings.tombstone_ttl)
            except (RedisError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.info("outbox sweep skipped: %s", type(exc).__name__)


def _too_many(decision: Decision) -> TooManyFailures:
    return TooManyFailures(headers={"Retry-After": str(decision.retry_after)})


def _bearer(scope: Scope) -> str | None:
    """Only the Authorization header carries a token: never a query string or a cookie."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, rest = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer":
                return None
            return rest.strip() or None
    return None
