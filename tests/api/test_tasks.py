"""The Tasks endpoints' behaviour against the real database."""

from __future__ import annotations

import re

import asyncpg
import httpx

from tests.conftest import Project, make_project

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
FIELDS = ["id", "title", "description", "status", "task_group_id", "assigned_to", "position",
          "created_at", "updated_at"]


async def create(client: httpx.AsyncClient, project: Project, **body: object) -> dict:
    body.setdefault("task_group_id", project.group_id)
    r = await client.post("/api/v1/tasks", json=body, headers=project.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def positions(pool: asyncpg.Pool, group_id: int) -> list[tuple[int, int]]:
    rows = await pool.fetch("SELECT id, position FROM tasks WHERE task_group_id = $1 ORDER BY position", group_id)
    return [(r["id"], r["position"]) for r in rows]


async def test_create_defaults_and_shape(client, project: Project) -> None:
    task = await create(client, project, title="Write docs")
    assert list(task) == FIELDS
    assert task["description"] is None
    assert task["status"] == "backlog"
    assert task["assigned_to"] is None
    assert task["position"] == 1
    assert TS.fullmatch(task["created_at"]) and task["created_at"] == task["updated_at"]


async def test_create_goes_to_end_or_to_its_position(client, pool, project: Project) -> None:
    a = await create(client, project, title="a")
    b = await create(client, project, title="b")
    c = await create(client, project, title="c", position=1)
    d = await create(client, project, title="d", position=99)
    assert (a["position"], b["position"], c["position"], d["position"]) == (1, 2, 1, 4)
    assert await positions(pool, project.group_id) == [(c["id"], 1), (a["id"], 2), (b["id"], 3), (d["id"], 4)]


async def test_get_includes_counts(client, pool, project: Project) -> None:
    task = await create(client, project, title="with children", description="full text")
    await pool.execute("INSERT INTO subtasks (task_id, title, position) SELECT $1, 's' || g, g "
                       "FROM generate_series(1, 4) g", task["id"])
    await pool.execute("INSERT INTO comments (task_id, body) SELECT $1, 'c' || g FROM generate_series(1, 7) g",
                       task["id"])
    r = await client.get(f"/api/v1/tasks/{task['id']}", headers=project.headers)
    assert r.status_code == 200
    detail = r.json()["data"]
    assert list(detail) == FIELDS[:7] + ["subtasks_count", "comments_count"] + FIELDS[7:]
    assert (detail["subtasks_count"], detail["comments_count"]) == (4, 7)
    assert detail["description"] == "full text"


async def test_list_order_pagination_and_meta(client, pool, project: Project) -> None:
    ids = [(await create(client, project, title=f"t{i}"))["id"] for i in range(7)]
    # equal timestamps must still order by id, newest first
    await pool.execute("UPDATE tasks SET created_at = '2026-01-01T00:00:00Z' WHERE id = ANY($1::bigint[])", ids[:3])
    expected = list(reversed(ids[3:])) + list(reversed(ids[:3]))
    got: list[int] = []
    for page in (1, 2, 3):
        r = await client.get("/api/v1/tasks", params={"page": page, "per_page": 3}, headers=project.headers)
        assert r.status_code == 200
        body = r.json()
        assert body["meta"] == {"current_page": page, "last_page": 3, "per_page": 3, "total": 7}
        got += [t["id"] for t in body["data"]]
        assert all(list(t) == FIELDS for t in body["data"])
    assert got == expected
    r = await client.get("/api/v1/tasks", params={"page": 9, "per_page": 3}, headers=project.headers)
    assert r.json() == {"data": [], "meta": {"current_page": 9, "last_page": 3, "per_page": 3, "total": 7}}


async def test_list_default_page_size_is_25(client, pool, project: Project) -> None:
    await pool.execute(
        "INSERT INTO tasks (project_id, task_group_id, title, position) SELECT $1, $2, 't' || g, g "
        "FROM generate_series(1, 30) g", project.id, project.group_id)
    body = (await client.get("/api/v1/tasks", headers=project.headers)).json()
    assert len(body["data"]) == 25
    assert body["meta"] == {"current_page": 1, "last_page": 2, "per_page": 25, "total": 30}


async def test_list_filters_combine(client, pool) -> None:
    project = await make_project(pool, groups=2)
    other_group = await pool.fetchval("SELECT id FROM task_groups WHERE project_id = $1 AND id <> $2",
                                      project.id, project.group_id)
    me = project.admin_id
    a = await create(client, project, title="a", status="planned", assigned_to=me)
    b = await create(client, project, title="b", status="planned")
    c = await create(client, project, title="c", status="completed", assigned_to=me, task_group_id=other_group)

    async def ids(**params: object) -> tuple[list[int], int]:
        r = await client.get("/api/v1/tasks", params=params, headers=project.headers)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["data"]], r.json()["meta"]["total"]

    assert await ids(status="planned") == ([b["id"], a["id"]], 2)
    assert await ids(assigned_to=me) == ([c["id"], a["id"]], 2)
    assert await ids(task_group_id=other_group) == ([c["id"]], 1)
    assert await ids(status="planned", assigned_to=me) == ([a["id"]], 1)
    assert await ids(status="planned", assigned_to=me, task_group_id=other_group) == ([], 0)
    assert await ids(status="in_progress") == ([], 0)


async def test_update_is_partial(client, pool, project: Project) -> None:
    task = await create(client, project, title="Add export to CSV", description="d", status="planned")
    await pool.execute("UPDATE tasks SET created_at = created_at - interval '1 day', "
                       "updated_at = updated_at - interval '1 day' WHERE id = $1", task["id"])
    r = await client.put(f"/api/v1/tasks/{task['id']}", json={"status": "in_progress",
                                                               "assigned_to": project.admin_id},
                         headers=project.headers)
    assert r.status_code == 200, r.text
    updated = r.json()["data"]
    assert updated["status"] == "in_progress" and updated["assigned_to"] == project.admin_id
    assert (updated["title"], updated["description"], updated["position"]) == ("Add export to CSV", "d", 1)
    assert updated["updated_at"] > updated["created_at"]
    r = await client.put(f"/api/v1/tasks/{task['id']}", json={"description": None, "assigned_to": None},
                         headers=project.headers)
    assert (r.json()["data"]["description"], r.json()["data"]["assigned_to"]) == (None, None)
    assert r.json()["data"]["status"] == "in_progress"
    r = await client.put(f"/api/v1/tasks/{task['id']}", json={}, headers=project.headers)
    assert r.status_code == 200 and r.json()["data"]["title"] == "Add export to CSV"


async def test_moves_keep_positions_dense(client, pool) -> None:
    project = await make_project(pool, groups=2)
    g1 = project.group_id
    g2 = await pool.fetchval("SELECT id FROM task_groups WHERE project_id = $1 AND id <> $2", project.id, g1)
    t = [(await create(client, project, title=f"t{i}"))["id"] for i in range(4)]

    async def put(task_id: int, **body: object) -> dict:
        r = await client.put(f"/api/v1/tasks/{task_id}", json=body, headers=project.headers)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    assert (await put(t[0], position=3))["position"] == 3
    assert await positions(pool, g1) == [(t[1], 1), (t[2], 2), (t[0], 3), (t[3], 4)]
    assert (await put(t[3], position=1))["position"] == 1
    assert await positions(pool, g1) == [(t[3], 1), (t[1], 2), (t[2], 3), (t[0], 4)]
    assert (await put(t[0], position=50))["position"] == 4  # past the end means the end
    moved = await put(t[1], task_group_id=g2)
    assert (moved["task_group_id"], moved["position"]) == (g2, 1)
    assert await positions(pool, g1) == [(t[3], 1), (t[2], 2), (t[0], 3)]
    moved = await put(t[3], task_group_id=g2, position=1)
    assert await positions(pool, g2) == [(t[3], 1), (t[1], 2)]
    assert await positions(pool, g1) == [(t[2], 1), (t[0], 2)]


async def test_delete_cascades_and_closes_the_gap(client, pool, project: Project) -> None:
    t = [(await create(client, project, title=f"t{i}"))["id"] for i in range(3)]
    await pool.execute("INSERT INTO subtasks (task_id, title, position) VALUES ($1, 's', 1)", t[0])
    await pool.execute("INSERT INTO comments (task_id, body) VALUES ($1, 'c')", t[0])
    r = await client.delete(f"/api/v1/tasks/{t[0]}", headers=project.headers)
    assert r.status_code == 204 and r.content == b""
    assert await pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", t[0]) == 0
    assert await pool.fetchval("SELECT count(*) FROM comments WHERE task_id = $1", t[0]) == 0
    assert await positions(pool, project.group_id) == [(t[1], 1), (t[2], 2)]
    assert (await client.get(f"/api/v1/tasks/{t[0]}", headers=project.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/tasks/{t[0]}", headers=project.headers)).status_code == 404
    meta = (await client.get("/api/v1/tasks", headers=project.headers)).json()["meta"]
    assert meta["total"] == 2


async def test_other_projects_tasks_are_not_found(client, pool, project: Project) -> None:
    other = await make_project(pool)
    theirs = await create(client, other, title="secret")
    for method in ("GET", "DELETE"):
        r = await client.request(method, f"/api/v1/tasks/{theirs['id']}", headers=project.headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.put(f"/api/v1/tasks/{theirs['id']}", json={"title": "mine"}, headers=project.headers)
    assert r.status_code == 404
    listed = (await client.get("/api/v1/tasks", headers=project.headers)).json()
    assert theirs["id"] not in [t["id"] for t in listed["data"]]
    # and nothing changed
    assert await pool.fetchval("SELECT title FROM tasks WHERE id = $1", theirs["id"]) == "secret"


async def test_task_groups_list(client, pool) -> None:
    project = await make_project(pool, groups=3)
    r = await client.get("/api/v1/task_groups", headers=project.headers)
    assert r.status_code == 200
    data = r.json()["data"]
    assert [g["position"] for g in data] == [1, 2, 3]
    assert [g["name"] for g in data] == ["Group 0", "Group 1", "Group 2"]
    assert data[0]["id"] == project.group_id and list(data[0]) == ["id", "name", "position"]


async def test_timestamps_are_utc_seconds(client, pool, project: Project) -> None:
    task = await create(client, project, title="t")
    await pool.execute("UPDATE tasks SET created_at = '2026-01-15 12:30:00.987654+02' WHERE id = $1", task["id"])
    r = await client.get(f"/api/v1/tasks/{task['id']}", headers=project.headers)
    assert r.json()["data"]["created_at"] == "2026-01-15T10:30:00Z"
