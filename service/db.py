"""The PostgreSQL pool, and how database failures become service errors."""

from __future__ import annotations

import asyncpg

from service.errors import ApiError, ServiceUnavailable, ValidationFailed
from service.settings import Settings

# Foreign keys whose violation means the client named something that is not in its project.
_FIELD_OF_CONSTRAINT = {
    "tasks_project_id_task_group_id_fkey": ("task_group_id", "No task group with this id in the project."),
    "tasks_project_id_assigned_to_fkey": ("assigned_to", "No member with this id in the project."),
}


async def create_pool(settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        server_settings={"application_name": "pathpro", "timezone": "UTC"},
        reset=_keep_session,
    )


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
    if isinstance(exc, (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                        asyncpg.ConnectionDoesNotExistError, asyncpg.TooManyConnectionsError)):
        return ServiceUnavailable(headers={"Retry-After": "5"})
    return None
