"""Databases of their own for the suite and the benchmark: made on a server, migrated, dropped after."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from service.migrate import migrate


def with_database(server_url: str, name: str) -> str:
    """The server URL pointing at database `name` instead."""
    base, _, query = server_url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, prefix: str = "pathpro_test") -> AsyncIterator[str]:
    """A new, migrated database on the server; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server_url, name)
    try:
        await migrate(url)
        yield url
    finally:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
