"""The demo project `make run` creates on an empty database, so a newcomer can call the API at once."""

from __future__ import annotations

import secrets
import sys

import asyncpg

from service import tokens
from service.admin import add_member, create_group, create_project, create_user

_TASKS = [
    ("Implement dark mode", "Add dark mode support across all pages", "in_progress", 0),
    ("Add export to CSV", "Allow users to export task lists as CSV files", "planned", 0),
    ("Write the onboarding guide", None, "backlog", 1),
    ("Ship the public roadmap", "Publish what is planned for the next quarter", "completed", 1),
]


async def seed_if_empty(database_url: str, base_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            # one seeder among replicas started together
            await conn.execute("SELECT pg_advisory_xact_lock(7061)")
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM projects)"):
                return
            password = secrets.token_urlsafe(12)
            email = "admin@demo.pathpro.test"
            project_id = await create_project(conn, "demo", "Demo project", None)
            await create_user(conn, email, "Demo Admin", password)
            user_id = await add_member(conn, "demo", email, "admin")
            groups = [await create_group(conn, "demo", name) for name in ("To do", "Done")]
            for title, description, status, group in _TASKS:
                await conn.execute(
                    """INSERT INTO tasks (project_id, task_group_id, title, description, status, assigned_to,
                                          position)
                       SELECT $1, $2, $3, $4, $5::task_status, $6, coalesce(max(position), 0) + 1
                         FROM tasks WHERE task_group_id = $2""",
                    project_id, groups[group], title, description, status, user_id,
                )
            _, token = await tokens.create(conn, project_id, "Demo token", "live", created_by=user_id)
    finally:
        await conn.close()
    print(
        "\nA demo project was created (shown once, not stored anywhere):\n"
        f"  sign in at {base_url}/login as {email} with password {password}\n"
        f"  API token: {token}\n"
        f"  curl -H 'Authorization: Bearer {token}' -H 'Accept: application/json' {base_url}/api/v1/tasks\n",
        file=sys.stderr, flush=True,
    )
