"""API tokens: their format, checksum and digest, and creating, listing and revoking them."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service import tokencache

log = logging.getLogger("pathpro.tokens")

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
PREFIXES = {"live": "pk_live_", "test": "pk_test_"}
_RANDOM_CHARS = 27  # 62**27 > 2**160
_CHECKSUM_CHARS = 6  # 62**6 > 2**32
TOKEN_LENGTH = len("pk_live_") + _RANDOM_CHARS + _CHECKSUM_CHARS


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_CHARS)


def generate(mode: str) -> str:
    body = PREFIXES[mode] + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return body + _checksum(body)


def well_formed(token: str) -> bool:
    """Prefix, length, alphabet and checksum: what can be checked with no I/O."""
    if len(token) != TOKEN_LENGTH or not token.startswith(("pk_live_", "pk_test_")):
        return False
    rest = token[8:]
    if any(c not in _INDEX for c in rest):
        return False
    return _checksum(token[:-_CHECKSUM_CHARS]) == token[-_CHECKSUM_CHARS:]


def digest(token: str) -> bytes:
    # Tokens carry 160 random bits, so a fast hash is enough; argon2 is for low-entropy passwords.
    return hashlib.sha256(token.encode()).digest()


def mask(mode: str, last_four: str) -> str:
    return f"{PREFIXES[mode]}****{last_four}"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What a request learns about the token it carries."""

    token_id: int
    project_id: int
    rate_limit: int


LOOKUP_SQL = """
SELECT t.id, t.project_id, coalesce(t.rate_limit, p.api_rate_limit) AS rate_limit
  FROM api_tokens t JOIN projects p ON p.id = t.project_id
 WHERE t.digest = $1 AND t.revoked_at IS NULL"""


async def lookup(conn: asyncpg.Connection | asyncpg.Pool, token_digest: bytes) -> TokenRecord | None:
    row = await conn.fetchrow(LOOKUP_SQL, token_digest)
    if row is None:
        return None
    return TokenRecord(row["id"], row["project_id"], row["rate_limit"])


_CREATE_SQL = """
INSERT INTO api_tokens (project_id, name, mode, digest, last_four, rate_limit, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id"""


async def create(
    conn: asyncpg.Connection | asyncpg.Pool,
    project_id: int,
    name: str,
    mode: str,
    created_by: int | None = None,
    rate_limit: int | None = None,
) -> tuple[int, str]:
    """Create a token; return its id and the plaintext, which exists nowhere else afterwards."""
    token = generate(mode)
    token_id = await conn.fetchval(
        _CREATE_SQL, project_id, name, mode, digest(token), token[-4:], rate_limit, created_by
    )
    return token_id, token


@dataclass(frozen=True, slots=True)
class TokenListing:
    id: int
    name: str
    masked: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_LISTING_COLUMNS = "id, name, mode::text AS mode, last_four, created_at, last_used_at, revoked_at"
_LIST_SQL = f"""
SELECT {_LISTING_COLUMNS}
  FROM api_tokens WHERE project_id = $1
 ORDER BY created_at DESC, id DESC"""
_FIND_SQL = f"SELECT {_LISTING_COLUMNS} FROM api_tokens WHERE project_id = $1 AND id = $2"


def _listing(r: asyncpg.Record) -> TokenListing:
    return TokenListing(r["id"], r["name"], mask(r["mode"], r["last_four"]), r["created_at"],
                        r["last_used_at"], r["revoked_at"])


async def list_for_project(conn: asyncpg.Connection | asyncpg.Pool, project_id: int) -> list[TokenListing]:
    return [_listing(r) for r in await conn.fetch(_LIST_SQL, project_id)]


async def find(conn: asyncpg.Connection | asyncpg.Pool, project_id: int, token_id: int) -> TokenListing | None:
    """One token of the project, or None; a project's token list has no size limit, so it is not scanned."""
    row = await conn.fetchrow(_FIND_SQL, project_id, token_id)
    return _listing(row) if row is not None else None


_REVOKE_SQL = """
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
 WHERE id = $1 AND project_id = $2
RETURNING digest"""
_OUTBOX_SQL = """
INSERT INTO token_invalidations (token_id, digest, applied_at)
VALUES ($1, $2, CASE WHEN $3 THEN now() END)"""


async def revoke(
    conn: asyncpg.Connection | asyncpg.Pool,
    redis: aioredis.Redis | None,
    redis_prefix: str,
    project_id: int,
    token_id: int,
    *,
    tombstone_ttl: int = 86400,
) -> bool:
    """Revoke a token of the project at once on every replica. False when the project has no such token.

    In one transaction: mark the row revoked (which locks it), write the tombstone in Redis (it removes the
    cached record, and no fill may write a valid record beside it), and record an outbox row saying whether
    the tombstone reached Redis. A Redis that is unreachable does not stop the revocation: replicas ask
    PostgreSQL while they cannot reach Redis, and the first to reach it again replays the outbox. Revoking
    twice is harmless and writes the tombstone again.
    """
    async with _connection(conn) as c, c.transaction():
        token_digest = await c.fetchval(_REVOKE_SQL, token_id, project_id)
        if token_digest is None:
            return False
        applied = False
        if redis is not None:
            try:
                await tokencache.tombstone(redis, redis_prefix, bytes(token_digest), tombstone_ttl)
                applied = True
            except RedisError as exc:
                log.warning("revoked token %s while Redis is unreachable (%s); the outbox will replay it",
                            token_id, type(exc).__name__)
        await c.execute(_OUTBOX_SQL, token_id, token_digest, applied)
    return True


_SET_LIMIT_SQL = """
UPDATE api_tokens SET rate_limit = $3
 WHERE id = $1 AND project_id = $2
RETURNING digest"""


async def set_rate_limit(
    conn: asyncpg.Connection | asyncpg.Pool,
    redis: aioredis.Redis | None,
    redis_prefix: str,
    project_id: int,
    token_id: int,
    rate_limit: int | None,
) -> bool:
    """Set (or with None clear) a token's own limit; the cached record is dropped so the next request
    reads the new limit. False when the project has no such token."""
    token_digest = await conn.fetchval(_SET_LIMIT_SQL, token_id, project_id, rate_limit)
    if token_digest is None:
        return False
    if redis is not None:
        try:
            await redis.delete(tokencache.token_keys(redis_prefix, bytes(token_digest)).record)
        except RedisError:
            log.warning("Redis is unreachable; token %s keeps its cached limit until the entry expires",
                        token_id)
    return True


@contextlib.asynccontextmanager
async def _connection(conn: asyncpg.Connection | asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired:
            yield acquired
    else:
        yield conn
