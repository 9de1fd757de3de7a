"""The PostgreSQL pool, and how database failures become service errors."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

from service.errors import ApiError, ServiceUnavailable, ValidationFailed
from service.metrics import POOL_IN_USE
from service.settings import Settings

# Foreign keys whose violation means the client named something that is not in its project.
_FIELD_OF_CONSTRAINT = {
    "tasks_project_id_task_group_id_fkey": ("task_group_id", "No task group with this id in the project."),
    "tasks_project_id_assigned_to_fkey": ("assigned_to", "No member with this id in the project."),
}


class _OneLine(logging.Filter):
    """asyncpg's pool logs a full traceback each time it fails to reconnect while PostgreSQL is down; one
    line says as much."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLine())


class _FairAcquire:
    """`async with pool.acquire()`: waits its turn, bounded by the timeout, and keeps the in-use gauge.

    asyncpg's pool waits on an asyncio.Queue, which lets a newcomer take a connection just handed to the
    longest waiter before that waiter runs, sending the waiter to the back of the line; on a busy replica
    that gave a tenth of the requests many times the median wait. A FIFO semaphore with one permit per
    connection takes the turns instead (asyncio's Semaphore lets no newcomer past a waiter), so the pool
    itself never has a waiter to pass.
    """

    def __init__(self, inner: PoolAcquireContext, turns: asyncio.Semaphore, timeout: float | None) -> None:
        self._inner = inner
        self._turns = turns
        self._timeout = timeout

    async def __aenter__(self) -> Any:
        async with asyncio.timeout(self._timeout):
            await self._turns.acquire()
            try:
                conn = await self._inner.__aenter__()
            except BaseException:
                self._turns.release()
                raise
        POOL_IN_USE.inc()
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        POOL_IN_USE.dec()
        try:
            await self._inner.__aexit__(exc_type, exc, tb)
        finally:
            self._turns.release()


class BoundedPool(asyncpg.Pool):
    """A pool whose every acquire waits its turn, and at most `acquire_timeout`, for a connection.

    Handlers call pool.fetch() and friends, which acquire without a timeout; bounding it here, in one
    place, means an exhausted pool (or a PostgreSQL that does not answer) becomes a quick 503 rather than
    a request that hangs until the client gives up.
    """

    acquire_timeout: float | None = None
    turns: asyncio.Semaphore

    def acquire(self, *, timeout: float | None = None) -> Any:
        # the timeout covers the turn and the connection together, so asyncpg gets none of its own
        return _FairAcquire(super().acquire(), self.turns, self.acquire_timeout if timeout is None else timeout)


async def create_pool(settings: Settings) -> asyncpg.Pool:
    pool = BoundedPool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        loop=None,
        timeout=settings.db_connect_timeout,
        server_settings={
            "application_name": "pathpro",
            "timezone": "UTC",
            "statement_timeout": str(settings.db_statement_timeout_ms),
            # a transaction left open by a stuck client must not hold locks for ever
            "idle_in_transaction_session_timeout": str(max(settings.db_statement_timeout_ms * 2, 10_000)),
        },
        reset=_keep_session,
    )
    pool.acquire_timeout = settings.db_acquire_timeout
    pool.turns = asyncio.Semaphore(settings.db_pool_max)
    await pool
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Hand a released connection back as it is.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()` on every
    release: a second round trip for every one-statement request. The service never changes session
    state on pooled connections (no SET, LISTEN, cursors or session advisory locks), and asyncpg still
    rolls back a transaction left open before calling this.
    """


def translate(exc: Exception) -> ApiError | None:
    """The client-facing error for a database failure, or None when it is a bug of ours."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        field = _FIELD_OF_CONSTRAINT.get(exc.constraint_name or "")
        if field:
            return ValidationFailed(fields={field[0]: field[1]})
        return None
    if isinstance(exc, TimeoutError):
        # no pool connection came free in time (TimeoutError is an OSError: test it first)
        return ServiceUnavailable("The service is busy. Retry shortly.", headers={"Retry-After": "1"})
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ServiceUnavailable("The request took too long. Retry shortly.", headers={"Retry-After": "1"})
    # InternalClientError: a pooled connection the server has just cut off (it shuts down) is handed out
    # before asyncpg sees the socket close; the next acquire gets a fresh connection
    if isinstance(exc, (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                        asyncpg.exceptions.OperatorInterventionError, asyncpg.TooManyConnectionsError,
                        asyncpg.exceptions.InternalClientError)):
        # PostgreSQL is down, restarting or refusing connections
        return ServiceUnavailable(headers={"Retry-After": "5"})
    return None
