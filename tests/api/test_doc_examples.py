"""The published doc's example requests, replayed as written, against a database laid out like the doc's.

The doc's project has 87 tasks; task 1 ("Implement dark mode") is the newest, in task group 3 at
position 1 with 4 subtasks and 7 comments; group 3 holds 14 tasks, so the created task is id 88 at
position 15. Users 5 and 12 are members. Responses are compared field by field; only the times of the
task the doc creates are left out, since they are "now".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service import tokens
from service.app import create_app
from service.settings import Settings
from tests.databases import fresh_database

HOST = "your-project.app.pathpro.co"

# Copied verbatim from the published doc.
LIST_RESPONSE = '{ "data": [ { "id": 1, "title": "Implement dark mode", "description": "Add dark mode support across all pages", "status": "in_progress", "task_group_id": 3, "assigned_to": 12, "position": 1, "created_at": "2026-01-15T10:30:00Z", "updated_at": "2026-02-10T14:22:00Z" } ], "meta": { "current_page": 1, "last_page": 4, "per_page": 25, "total": 87 } }'  # noqa: E501
GET_RESPONSE = '{ "data": { "id": 1, "title": "Implement dark mode", "description": "Add dark mode support across all pages", "status": "in_progress", "task_group_id": 3, "assigned_to": 12, "position": 1, "subtasks_count": 4, "comments_count": 7, "created_at": "2026-01-15T10:30:00Z", "updated_at": "2026-02-10T14:22:00Z" } }'  # noqa: E501
CREATE_REQUEST = '{ "title": "Add export to CSV", "description": "Allow users to export task lists as CSV files", "task_group_id": 3, "status": "planned", "assigned_to": 12 }'  # noqa: E501
CREATE_RESPONSE = '{ "data": { "id": 88, "title": "Add export to CSV", "description": "Allow users to export task lists as CSV files", "status": "planned", "task_group_id": 3, "assigned_to": 12, "position": 15, "created_at": "2026-02-17T09:15:00Z", "updated_at": "2026-02-17T09:15:00Z" } }'  # noqa: E501
UPDATE_REQUEST = '{ "status": "in_progress", "assigned_to": 5 }'
UPDATE_RESPONSE = '{ "data": { "id": 88, "title": "Add export to CSV", "description": "Allow users to export task lists as CSV files", "status": "in_progress", "task_group_id": 3, "assigned_to": 5, "position": 15, "created_at": "2026-02-17T09:15:00Z", "updated_at": "2026-02-17T11:42:00Z" } }'  # noqa: E501


def doc_json(text: str) -> Any:
    return json.loads(text)


async def lay_out_doc_project(conn: asyncpg.Connection) -> str:
    project_id = await conn.fetchval(
        "INSERT INTO projects (slug, name) VALUES ('your-project', 'Your project') RETURNING id")
    await conn.execute("INSERT INTO users (email, name) SELECT 'user' || g || '@example.com', 'User ' || g "
                       "FROM generate_series(1, 12) g")
    await conn.execute("INSERT INTO memberships (project_id, user_id, role) SELECT $1, id, 'team_member' "
                       "FROM users", project_id)
    await conn.execute("INSERT INTO task_groups (project_id, name, position) SELECT $1, 'Group ' || g, g "
                       "FROM generate_series(1, 3) g", project_id)
    await conn.execute(
        """INSERT INTO tasks (project_id, task_group_id, title, description, status, assigned_to, position,
                              created_at, updated_at)
           VALUES ($1, 3, 'Implement dark mode', 'Add dark mode support across all pages', 'in_progress', 12, 1,
                   '2026-01-15T10:30:00Z', '2026-02-10T14:22:00Z')""", project_id)
    # 13 more in group 3 and 73 spread over groups 1 and 2, all older than task 1
    await conn.execute(
        """INSERT INTO tasks (project_id, task_group_id, title, position, created_at)
           SELECT $1, 3, 'Older task ' || g, g + 1, timestamptz '2026-01-01' + g * interval '1 hour'
             FROM generate_series(1, 13) g""", project_id)
    await conn.execute(
        """INSERT INTO tasks (project_id, task_group_id, title, position, created_at)
           SELECT $1, 1 + g % 2, 'Other task ' || g, (g + 1) / 2, timestamptz '2025-12-01' + g * interval '1 hour'
             FROM generate_series(1, 73) g""", project_id)
    await conn.execute("INSERT INTO subtasks (task_id, title, position) SELECT 1, 'Step ' || g, g "
                       "FROM generate_series(1, 4) g")
    await conn.execute("INSERT INTO comments (task_id, body) SELECT 1, 'Comment ' || g FROM generate_series(1, 7) g")
    _, token = await tokens.create(conn, project_id, "Doc token", "live")
    return token


@pytest.fixture(scope="module")
async def doc_client(servers: tuple[str, str], settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with fresh_database(servers[0]) as url:
        conn = await asyncpg.connect(url)
        try:
            token = await lay_out_doc_project(conn)
        finally:
            await conn.close()
        app = create_app(Settings(database_url=url, redis_url=settings.redis_url,
                                  redis_prefix=settings.redis_prefix + "doc:"))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
                yield client, token


def headers(token: str, *, body: bool = False) -> dict[str, str]:
    h = {"Host": HOST, "Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body:
        h["Content-Type"] = "application/json"
    return h


async def test_doc_examples_in_order(doc_client: tuple[httpx.AsyncClient, str]) -> None:
    client, token = doc_client

    r = await client.get("/api/v1/tasks", headers=headers(token))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    expected = doc_json(LIST_RESPONSE)
    body = r.json()
    assert body["meta"] == expected["meta"]
    assert body["data"][0] == expected["data"][0]
    assert len(body["data"]) == 25

    r = await client.get("/api/v1/tasks/1", headers=headers(token))
    assert r.status_code == 200
    assert r.json() == doc_json(GET_RESPONSE)

    r = await client.post("/api/v1/tasks", content=CREATE_REQUEST, headers=headers(token, body=True))
    assert r.status_code == 201
    assert without_times(r.json()) == without_times(doc_json(CREATE_RESPONSE))

    r = await client.put("/api/v1/tasks/88", content=UPDATE_REQUEST,
                         headers=headers(token, body=True))
    assert r.status_code == 200
    assert without_times(r.json()) == without_times(doc_json(UPDATE_RESPONSE))

    r = await client.delete("/api/v1/tasks/88", headers=headers(token))
    assert r.status_code == 204 and r.content == b""

    r = await client.get("/api/v1/tasks", headers={"Host": HOST, "Accept": "application/json"})
    assert r.status_code == 401


def without_times(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": {k: v for k, v in body["data"].items() if k not in ("created_at", "updated_at")}}
