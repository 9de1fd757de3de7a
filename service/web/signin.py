"""Checking an email and password: per-account and per-address throttling, argon2id, rehashing.

A wrong email and a wrong password take the same path: the account's attempts are counted by the
email's digest whether or not the account exists, and an unknown account is verified against a dummy
hash with the same parameters, so neither the answer nor its timing says which one was wrong.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from service import passwords
from service.errors import ApiError, ServiceUnavailable
from service.web import sessions

ACCOUNT_LIMIT = 5  # failed sign-ins per account per window
ADDRESS_LIMIT = 30  # failed sign-ins per client address per window (offices share one address)
WINDOW = 15 * 60


@functools.cache
def _dummy_hash() -> str:
    """A hash with the current parameters that no password matches, for accounts that do not exist."""
    return passwords.hash_password(secrets.token_urlsafe(16))


class Throttled(ApiError):
    status = 429
    code = "too_many_sign_ins"
    message = "Too many sign-in attempts. Wait a few minutes and try again."
    default_headers = {"Retry-After": str(WINDOW)}


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str


def _keys(request: Request, email: str) -> tuple[str, str]:
    prefix: str = request.app.state.settings.redis_prefix
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    address = sessions.client_address(request)
    return f"{prefix}signin:account:{account}", f"{prefix}signin:address:{address}"


async def _count_attempt(request: Request, keys: tuple[str, str]) -> bool:
    """Count this attempt against both limits at once; True when either is exceeded."""
    pipe = request.app.state.redis.pipeline(transaction=True)
    for key in keys:
        pipe.incr(key)
        pipe.expire(key, WINDOW, nx=True)
    try:
        account, _, address, _ = await pipe.execute()
    except RedisError:
        # without the counters nobody can be throttled; refusing sign-in is the safe side
        raise ServiceUnavailable(headers={"Retry-After": "5"}) from None
    return int(account) > ACCOUNT_LIMIT or int(address) > ADDRESS_LIMIT


async def _forget_attempt(request: Request, keys: tuple[str, str]) -> None:
    """A success clears the account's failures and takes this attempt back from the address's count."""
    pipe = request.app.state.redis.pipeline(transaction=True)
    pipe.delete(keys[0])
    pipe.decr(keys[1])
    try:
        await pipe.execute()
    except RedisError:
        pass  # the counters expire on their own


_USER_SQL = "SELECT id, email, name, password_hash FROM users WHERE lower(email) = lower($1)"
# only replaces the hash that was verified, so a password changed meanwhile is not overwritten
_REHASH_SQL = "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2"


async def authenticate(request: Request, email: str, password: str) -> User | None:
    """The user these credentials belong to, or None; Throttled past the limits, without checking them."""
    keys = _keys(request, email)
    if await _count_attempt(request, keys):
        raise Throttled()
    pool = request.app.state.pool
    email = email.strip()
    # PostgreSQL refuses NUL in text; such an email names no account
    row = await pool.fetchrow(_USER_SQL, email) if "\x00" not in email and len(email) <= 320 else None
    stored = row["password_hash"] if row is not None else None
    matches = await run_in_threadpool(passwords.verify, stored or _dummy_hash(), password)
    if not (matches and stored):
        return None
    await _forget_attempt(request, keys)
    if passwords.needs_rehash(stored):
        fresh = await run_in_threadpool(passwords.hash_password, password)
        await pool.execute(_REHASH_SQL, row["id"], stored, fresh)
    return User(row["id"], row["email"], row["name"])
