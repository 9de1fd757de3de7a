"""Settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = Path(os.environ.get("PATHPRO_MIGRATIONS_DIR", ROOT / "sql" / "migrations"))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


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
        )
