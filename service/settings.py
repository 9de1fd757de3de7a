"""Settings, read once from the environment."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = Path(os.environ.get("PATHPRO_MIGRATIONS_DIR", ROOT / "sql" / "migrations"))


def _networks(name: str) -> tuple[str, ...]:
    specs = tuple(p.strip() for p in os.environ.get(name, "").split(",") if p.strip())
    for spec in specs:
        try:
            ipaddress.ip_network(spec, strict=False)
        except ValueError:
            raise SystemExit(f"{name} must list IP addresses or networks, got {spec!r}") from None
    return specs


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise SystemExit(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    # every Redis key the service writes starts with this, so several deployments (or test runs) can share one Redis
    redis_prefix: str = "pathpro:"
    max_body_bytes: int = 1024 * 1024
    default_rate_limit: int = 60
    db_pool_min: int = 2
    db_pool_max: int = 10
    # the token cache in Redis (seconds); a tombstone outlives any record so no stale fill can land
    token_cache_ttl: int = 300
    unknown_token_ttl: int = 30
    tombstone_ttl: int = 86400
    # failed authentications allowed per client address per minute
    auth_failure_limit: int = 30
    # addresses or networks of proxies whose X-Forwarded-For is believed; empty: the peer is the client
    trusted_proxies: tuple[str, ...] = ()
    # how long a Redis command may take, and how often a replica that lost Redis tries it again
    redis_timeout: float = 0.5
    redis_retry_interval: float = 1.0
    # how often each replica applies revocations that could not reach Redis when they were made
    outbox_sweep_interval: float = 5.0
    # how long a request waits for a free pool connection before it gets a 503 (seconds)
    db_acquire_timeout: float = 2.0
    # PostgreSQL cancels any statement running longer than this (milliseconds)
    db_statement_timeout_ms: int = 5000
    # how long opening one PostgreSQL connection may take (seconds)
    db_connect_timeout: float = 3.0
    # SIGTERM: how long requests in flight may take to finish before the process exits anyway (seconds)
    shutdown_timeout: float = 20.0

    @classmethod
    def from_env(cls) -> Settings:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            raise SystemExit("DATABASE_URL is not set")
        return cls(
            database_url=database_url,
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_prefix=os.environ.get("PATHPRO_REDIS_PREFIX", "pathpro:"),
            max_body_bytes=_int("PATHPRO_MAX_BODY_BYTES", 1024 * 1024),
            db_pool_min=_int("PATHPRO_DB_POOL_MIN", 2),
            db_pool_max=_int("PATHPRO_DB_POOL_MAX", 10),
            token_cache_ttl=_int("PATHPRO_TOKEN_CACHE_TTL", 300),
            unknown_token_ttl=_int("PATHPRO_UNKNOWN_TOKEN_TTL", 30),
            tombstone_ttl=_int("PATHPRO_TOMBSTONE_TTL", 86400),
            auth_failure_limit=_int("PATHPRO_AUTH_FAILURE_LIMIT", 30),
            trusted_proxies=_networks("PATHPRO_TRUSTED_PROXIES"),
            redis_timeout=_float("PATHPRO_REDIS_TIMEOUT", 0.5),
            redis_retry_interval=_float("PATHPRO_REDIS_RETRY_INTERVAL", 1.0),
            outbox_sweep_interval=_float("PATHPRO_OUTBOX_SWEEP_INTERVAL", 5.0),
            db_acquire_timeout=_float("PATHPRO_DB_ACQUIRE_TIMEOUT", 2.0),
            db_statement_timeout_ms=_int("PATHPRO_DB_STATEMENT_TIMEOUT_MS", 5000),
            db_connect_timeout=_float("PATHPRO_DB_CONNECT_TIMEOUT", 3.0),
            shutdown_timeout=_float("PATHPRO_SHUTDOWN_TIMEOUT", 20.0),
        )
