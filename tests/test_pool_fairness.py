"""The PostgreSQL pool serves the requests waiting for a connection in the order they began to wait.

asyncio.Queue, which asyncpg's pool waits on, lets a newcomer take a connection that was just handed to
the longest waiter before that waiter runs, and the waiter goes to the back of the line. On a busy replica
that made a tenth of the requests wait many times longer than the rest (p99 at 25x p50 in the bench).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from service import db
from service.settings import Settings


async def test_a_newcomer_never_takes_the_connection_of_an_earlier_waiter(settings: Settings) -> None:
    pool = await db.create_pool(replace(settings, db_pool_min=1, db_pool_max=1))
    try:
        # the newcomer arrives 0..5 loop turns after the release: at some of them it finds the
        # connection back in the queue before the woken waiter has run
        for turns in range(6):
            order: list[str] = []

            async def use(order: list[str], name: str, wait_turns: int = 0) -> None:
                for _ in range(wait_turns):
                    await asyncio.sleep(0)
                async with pool.acquire() as conn:
                    order.append(name)
                    await conn.fetchval("SELECT 1")

            holding = pool.acquire()
            await holding.__aenter__()
            waiter = asyncio.create_task(use(order, "waiter"))
            await asyncio.sleep(0.05)  # the waiter is in line
            release = asyncio.create_task(holding.__aexit__(None, None, None))
            newcomer = asyncio.create_task(use(order, "newcomer", turns))
            await asyncio.gather(release, waiter, newcomer)
            assert order == ["waiter", "newcomer"], f"a newcomer {turns} turns after the release went first"
    finally:
        await pool.close()
