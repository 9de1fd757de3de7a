"""Migrations: applied in order, recorded, once, even when several replicas start together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from service.migrate import migrate
from service.settings import MIGRATIONS_DIR
from tests.databases import fresh_database


async def test_concurrent_migrations_apply_each_file_once(servers, tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (id int); INSERT INTO a VALUES (1);")
    (tmp_path / "0002_b.sql").write_text("INSERT INTO a SELECT max(id) + 1 FROM a;")
    async with fresh_database(servers[0]) as url:
        results = await asyncio.gather(*(migrate(url, tmp_path) for _ in range(5)))
        assert sorted(v for r in results for v in r) == ["0001_a", "0002_b"]
        conn = await asyncpg.connect(url)
        try:
            assert [r["id"] for r in await conn.fetch("SELECT id FROM a ORDER BY id")] == [1, 2]
            versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations "
                                                                "WHERE version LIKE '%\\_a' OR version LIKE '%\\_b'")]
            assert sorted(versions) == ["0001_a", "0002_b"]
        finally:
            await conn.close()
        assert await migrate(url, tmp_path) == []


async def test_failed_migration_leaves_nothing_behind(servers, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT * FROM missing_table;")
    async with fresh_database(servers[0]) as url:
        try:
            await migrate(url, tmp_path)
            raise AssertionError("the broken migration was applied")
        except asyncpg.UndefinedTableError:
            pass
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT to_regclass('half')") is None
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '0002_bad'") == 0
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '0001_ok'") == 1
        finally:
            await conn.close()


async def test_project_migrations_are_all_recorded(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        recorded = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    finally:
        await conn.close()
    assert recorded == {p.stem for p in MIGRATIONS_DIR.glob("*.sql")}
