"""Operator actions on projects, users, memberships and task groups (the CLI and the demo seed use them)."""

from __future__ import annotations

import asyncpg

from service import passwords


class AdminError(Exception):
    """A mistake in what the operator asked for; its message is one line for people."""


async def project_id_of(conn: asyncpg.Connection, slug: str) -> int:
    project_id = await conn.fetchval("SELECT id FROM projects WHERE slug = $1", slug)
    if project_id is None:
        raise AdminError(f"no project with slug {slug!r}")
    return int(project_id)


async def create_project(conn: asyncpg.Connection, slug: str, name: str, rate_limit: int | None) -> int:
    try:
        return int(await conn.fetchval(
            "INSERT INTO projects (slug, name, api_rate_limit) VALUES ($1, $2, coalesce($3, 60)) RETURNING id",
            slug, name, rate_limit,
        ))
    except asyncpg.UniqueViolationError:
        raise AdminError(f"a project with slug {slug!r} exists already") from None
    except asyncpg.CheckViolationError:
        raise AdminError("the slug must be lowercase letters, digits and dashes; the name 1-255 characters;"
                           " the rate limit positive") from None


async def create_user(conn: asyncpg.Connection, email: str, name: str, password: str) -> int:
    try:
        return int(await conn.fetchval(
            "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
            email, name, passwords.hash_password(password),
        ))
    except asyncpg.UniqueViolationError:
        raise AdminError(f"a user with email {email!r} exists already") from None
    except asyncpg.CheckViolationError:
        raise AdminError("that is not an email address, or the name is empty") from None


async def add_member(conn: asyncpg.Connection, slug: str, email: str, role: str) -> int:
    project_id = await project_id_of(conn, slug)
    user_id = await conn.fetchval("SELECT id FROM users WHERE lower(email) = lower($1)", email)
    if user_id is None:
        raise AdminError(f"no user with email {email!r}")
    await conn.execute(
        """INSERT INTO memberships (project_id, user_id, role) VALUES ($1, $2, $3)
           ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role""",
        project_id, user_id, role,
    )
    return int(user_id)


async def create_group(conn: asyncpg.Connection, slug: str, name: str) -> int:
    project_id = await project_id_of(conn, slug)
    try:
        return int(await conn.fetchval(
            """INSERT INTO task_groups (project_id, name, position)
               SELECT $1, $2, coalesce(max(position), 0) + 1 FROM task_groups WHERE project_id = $1
               RETURNING id""",
            project_id, name,
        ))
    except asyncpg.CheckViolationError:
        raise AdminError("the group name must be 1-255 characters") from None
