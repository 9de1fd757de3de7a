"""The token cache in Redis: keys, the cached record, the Lua scripts, tombstones and the outbox replay.

Every key of one token carries the digest as its Redis Cluster hash tag, so one script call can read the
record, check the tombstone and slide the window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

log = logging.getLogger("pathpro.tokencache")

WINDOW_SECONDS = 60
WINDOW_US = WINDOW_SECONDS * 1_000_000
LAST_USED_GATE_SECONDS = 60
UNKNOWN = "x"  # the cached value of a digest that is unknown or revoked


@dataclass(frozen=True, slots=True)
class TokenKeys:
    record: str
    tombstone: str
    window: str
    used: str

    @property
    def all(self) -> list[str]:
        return [self.record, self.tombstone, self.window, self.used]


def token_keys(prefix: str, token_digest: bytes) -> TokenKeys:
    tag = f"{prefix}tok:{{{token_digest.hex()}}}"
    return TokenKeys(f"{tag}:rec", f"{tag}:tomb", f"{tag}:win", f"{tag}:used")


def address_key(prefix: str, address: str) -> str:
    return f"{prefix}authfail:{{{address}}}"


def sync_marker_key(prefix: str) -> str:
    """The run id of the Redis server the outbox was last replayed into."""
    return f"{prefix}outbox:synced"


def encode_record(token_id: int, project_id: int, rate_limit: int) -> str:
    return f"v1:{token_id}:{project_id}:{rate_limit}"


def decode_record(raw: bytes | str) -> tuple[int, int, int] | None:
    """(token id, project id, rate limit), or None for anything else: a garbled entry is a miss."""
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    parts = text.split(":")
    if len(parts) != 4 or parts[0] != "v1" or not all(p.isdigit() and p.isascii() for p in parts[1:]):
        return None
    token_id, project_id, rate_limit = (int(p) for p in parts[1:])
    if rate_limit < 1:
        return None
    return token_id, project_id, rate_limit


def _source(name: str) -> str:
    return (resources.files("service") / "lua" / f"{name}.lua").read_text()


_WINDOW = _source("window")
# The limiting scripts share the window's Lua, prepended; each is still one script, loaded by its SHA.
SOURCES = {
    "authorize": _WINDOW + _source("authorize"),
    "fill": _WINDOW + _source("fill"),
    "limit": _WINDOW + _source("limit"),
    "tombstone": _source("tombstone"),
}


class Scripts:
    """The scripts registered on one client. redis-py's Script answers NOSCRIPT (an empty script cache
    after a restart or SCRIPT FLUSH) by loading the script and running EVALSHA again; NOSCRIPT means the
    first call ran nothing, so nothing is counted twice."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.authorize: AsyncScript = client.register_script(SOURCES["authorize"])
        self.fill: AsyncScript = client.register_script(SOURCES["fill"])
        self.limit: AsyncScript = client.register_script(SOURCES["limit"])
        self.tombstone: AsyncScript = client.register_script(SOURCES["tombstone"])


async def tombstone(client: aioredis.Redis, prefix: str, token_digest: bytes, ttl: int) -> None:
    keys = token_keys(prefix, token_digest)
    await client.register_script(SOURCES["tombstone"])(keys=[keys.record, keys.tombstone], args=[ttl])


_REPLAY_SQL = """
SELECT id, digest FROM token_invalidations
 WHERE applied_at IS NULL OR created_at > now() - make_interval(secs => $1)
 ORDER BY id"""
_PENDING_SQL = "SELECT id, digest FROM token_invalidations WHERE applied_at IS NULL ORDER BY id LIMIT 1000"
_APPLIED_SQL = """
UPDATE token_invalidations SET applied_at = now()
 WHERE id = ANY($1::bigint[]) AND applied_at IS NULL"""


async def replay(pool: asyncpg.Pool, client: aioredis.Redis, prefix: str, *, cache_ttl: int,
                 tombstone_ttl: int, pending_only: bool = False) -> int:
    """Write the tombstones of revocations Redis may have missed; returns how many were written.

    After a restart Redis may hold records filled before a revoke, so the recent revocations (younger than
    a record can live) are written again with the pending ones; the periodic sweep needs only the pending.
    """
    if pending_only:
        rows = await pool.fetch(_PENDING_SQL)
    else:
        rows = await pool.fetch(_REPLAY_SQL, float(cache_ttl + 60))
    if not rows:
        return 0
    script = client.register_script(SOURCES["tombstone"])
    async with client.pipeline(transaction=False) as pipe:
        for row in rows:
            keys = token_keys(prefix, bytes(row["digest"]))
            await script(keys=[keys.record, keys.tombstone], args=[tombstone_ttl], client=pipe)
        await pipe.execute()
    await pool.execute(_APPLIED_SQL, [row["id"] for row in rows])
    return len(rows)


_PRUNE_SQL = """
DELETE FROM token_invalidations
 WHERE applied_at IS NOT NULL AND created_at < now() - make_interval(secs => $1)"""


async def prune(pool: asyncpg.Pool, *, cache_ttl: int, tombstone_ttl: int) -> None:
    """Forget applied revocations older than any record or tombstone they could still correct."""
    await pool.execute(_PRUNE_SQL, float(max(cache_ttl + 60, tombstone_ttl)))
