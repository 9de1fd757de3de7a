"""Cursor paging of GET /api/v1/tasks: the order, ties, filters, the end, concurrent inserts, bad cursors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from service.api import cursor
from tests.conftest import Project, make_project

_INSERT = """
INSERT INTO tasks (project_id, task_group_id, title, status, position, created_at)
SELECT $1, $2, 'Task ' || i, (enum_range(NULL::task_status))[1 + i % 4], $3 + i,
       $4::timestamptz + (i / 3) * interval '1 ms'
  FROM generate_series(0, $5 - 1) AS i
RETURNING id"""


@pytest.fixture
async def project(pool: asyncpg.Pool) -> Project:
    """A project whose token's limit these tests never reach: some walk pages while adding tasks."""
    return await make_project(pool, rate_limit=100_000)


async def _seed(pool: asyncpg.Pool, project: Project, n: int, first_position: int = 1) -> list[int]:
    """n tasks, three to a created_at (so the id has to break ties), in the project's first group."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = await pool.fetch(_INSERT, project.id, project.group_id, first_position, base, n)
    return [r["id"] for r in rows]


async def _newest_first(pool: asyncpg.Pool, project: Project, where: str = "") -> list[int]:
    rows = await pool.fetch(
        f"SELECT id FROM tasks WHERE project_id = $1 {where} ORDER BY created_at DESC, id DESC", project.id)
    return [r["id"] for r in rows]


async def _walk(client: httpx.AsyncClient, project: Project, query: str, per_page: int,
                between_pages: Any = None) -> tuple[list[int], list[dict[str, Any]]]:
    """Follows next_cursor from page 1 to the end; returns the ids seen and every response's meta."""
    r = await client.get(f"/api/v1/tasks?per_page={per_page}{query}", headers=project.headers)
    assert r.status_code == 200, r.text
    seen = [t["id"] for t in r.json()["data"]]
    metas = [r.json()["meta"]]
    link = r.headers.get("link")
    while link is not None:
        if between_pages is not None:
            await between_pages()
        url = link.split(";")[0].strip("<>")
        r = await client.get(url, headers=project.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [t["id"] for t in body["data"]]
        metas.append(body["meta"])
        link = r.headers.get("link")
        assert (link is None) == (body["meta"]["next_cursor"] is None)
    return seen, metas


async def test_cursor_pages_walk_the_whole_list_once_in_order(client, pool, project: Project) -> None:
    await _seed(pool, project, 23)
    expected = await _newest_first(pool, project)
    seen, metas = await _walk(client, project, "", per_page=5)
    assert seen == expected
    # page 1 keeps the published shape exactly; cursor pages carry their own
    assert metas[0] == {"current_page": 1, "last_page": 5, "per_page": 5, "total": 23}
    assert [set(m) for m in metas[1:]] == [{"per_page", "total", "next_cursor"}] * 4
    assert all(m["total"] == 23 and m["per_page"] == 5 for m in metas[1:])


async def test_cursor_combines_with_filters(client, pool, project: Project) -> None:
    await _seed(pool, project, 30)
    expected = await _newest_first(pool, project, "AND status = 'planned'")
    seen, metas = await _walk(client, project, "&status=planned", per_page=3)
    assert seen == expected and len(expected) > 3
    assert {m["total"] for m in metas} == {len(expected)}


async def test_no_task_is_skipped_or_repeated_while_tasks_are_added(client, pool, project: Project) -> None:
    await _seed(pool, project, 40)
    before = await _newest_first(pool, project)
    added: list[int] = []

    async def add_tasks() -> None:
        # new tasks arrive between pages, several at once, through the API
        replies = await asyncio.gather(*(
            client.post("/api/v1/tasks", headers=project.headers,
                        json={"title": f"Added {i}", "task_group_id": project.group_id, "position": 1})
            for i in range(3)))
        assert [r.status_code for r in replies] == [201] * 3
        added.extend(r.json()["data"]["id"] for r in replies)

    seen, _ = await _walk(client, project, "", per_page=7, between_pages=add_tasks)
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(before) <= set(seen)  # nothing that was there when paging began is missed
    assert [i for i in seen if i in set(before)] == before  # and the order held
    assert added and not set(seen) - set(before) - set(added)

    # the same arrivals shift page numbers: page-based paging shows tasks twice, so the walk above
    # was a real test of the cursor
    by_page: list[int] = []
    for page in range(1, 4):
        r = await client.get(f"/api/v1/tasks?per_page=7&page={page}", headers=project.headers)
        by_page += [t["id"] for t in r.json()["data"]]
        await add_tasks()
    assert len(by_page) > len(set(by_page))


async def test_the_end_of_the_list(client, pool, project: Project) -> None:
    ids = await _seed(pool, project, 4)
    r = await client.get("/api/v1/tasks?per_page=4", headers=project.headers)
    assert "link" not in r.headers  # exactly one page: nothing after it
    r = await client.get("/api/v1/tasks?per_page=3", headers=project.headers)
    url = r.headers["link"].split(";")[0].strip("<>")
    last = await client.get(url, headers=project.headers)
    assert [t["id"] for t in last.json()["data"]] == [min(ids)]
    assert last.json()["meta"] == {"per_page": 3, "total": 4, "next_cursor": None}
    assert "link" not in last.headers
    # a cursor at the oldest task: an empty page, still no next
    oldest = await pool.fetchrow("SELECT created_at, id FROM tasks WHERE id = $1", min(ids))
    r = await client.get(f"/api/v1/tasks?cursor={cursor.encode(*oldest)}", headers=project.headers)
    assert r.status_code == 200
    assert r.json() == {"data": [], "meta": {"per_page": 25, "total": 4, "next_cursor": None}}


async def test_a_cursor_pages_only_its_own_project(client, pool, project: Project) -> None:
    other = await make_project(pool)
    await _seed(pool, other, 5)
    mine = await _seed(pool, project, 5)
    r = await client.get("/api/v1/tasks?per_page=2", headers=other.headers)
    url = r.headers["link"].split(";")[0].strip("<>")
    r = await client.get(url, headers=project.headers)
    assert r.status_code == 200
    assert {t["id"] for t in r.json()["data"]} <= set(mine)


async def test_bad_cursors_are_422_naming_cursor(client, project: Project) -> None:
    await client.post("/api/v1/tasks", headers=project.headers,
                      json={"title": "One", "task_group_id": project.group_id})
    good = cursor.encode(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=365), 1)
    tampered = good[:-1] + ("B" if good[-1] != "B" else "C")
    for bad in ["", "garbage", "x" * 23, tampered, good + "A", "A" * 23, good.replace(good[0], "%")]:
        r = await client.get("/api/v1/tasks", params={"cursor": bad}, headers=project.headers)
        assert r.status_code == 422, (bad, r.text)
        assert set(r.json()["error"]["fields"]) == {"cursor"}
    r = await client.get(f"/api/v1/tasks?cursor={good}&page=2", headers=project.headers)
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"cursor"}
    r = await client.get(f"/api/v1/tasks?cursor={good}", headers=project.headers)
    assert r.status_code == 200 and r.json()["meta"]["total"] == 1


async def test_both_page_shapes_match_the_openapi_document(client, pool, project: Project) -> None:
    import jsonschema

    document = (await client.get("/api/v1/openapi.json")).json()
    get = document["paths"]["/api/v1/tasks"]["get"]
    assert "cursor" in [p["name"] for p in get["parameters"]]
    assert "Link" in get["responses"]["200"]["description"]
    await _seed(pool, project, 3)
    first = await client.get("/api/v1/tasks?per_page=2", headers=project.headers)
    second = await client.get(first.headers["link"].split(";")[0].strip("<>"), headers=project.headers)
    for body, shape in ((first.json(), "TaskPage"), (second.json(), "TaskCursorPage")):
        schema = {"$ref": f"#/components/schemas/{shape}", "components": document["components"]}
        jsonschema.validate(body, schema)
