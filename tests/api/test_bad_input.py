"""Bad input: a clear JSON error with the right status, and nothing changed."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import Project, make_project


async def snapshot(pool: asyncpg.Pool, project: Project) -> list[tuple]:
    rows = await pool.fetch("SELECT id, task_group_id, title, description, status::text, assigned_to, position, "
                            "updated_at FROM tasks WHERE project_id = $1 ORDER BY id", project.id)
    return [tuple(r) for r in rows]


@pytest.fixture
async def seeded(client: httpx.AsyncClient, project: Project) -> dict:
    r = await client.post("/api/v1/tasks", json={"title": "keep me", "task_group_id": project.group_id},
                          headers=project.headers)
    assert r.status_code == 201
    return r.json()["data"]


def assert_error(r: httpx.Response, status: int, code: str, fields: set[str] | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    if fields is not None:
        assert set(error["fields"]) == fields


GROUP = "<the project's group>"  # replaced by the real id in the test
BAD_BODIES = [
    ({"title": "x"}, {"task_group_id"}),
    ({"task_group_id": GROUP}, {"title"}),
    ({"title": "", "task_group_id": GROUP}, {"title"}),
    ({"title": "   ", "task_group_id": GROUP}, {"title"}),
    ({"title": "x" * 256, "task_group_id": GROUP}, {"title"}),
    ({"title": "a\u0000b", "task_group_id": GROUP}, {"title"}),
    ({"title": 5, "task_group_id": GROUP}, {"title"}),
    ({"title": "x", "task_group_id": True}, {"task_group_id"}),
    ({"title": "x", "task_group_id": "1"}, {"task_group_id"}),
    ({"title": "x", "task_group_id": 1.5}, {"task_group_id"}),
    ({"title": "x", "task_group_id": 0}, {"task_group_id"}),
    ({"title": "x", "task_group_id": 2**70}, {"task_group_id"}),
    ({"title": "x", "task_group_id": GROUP, "status": "done"}, {"status"}),
    ({"title": "x", "task_group_id": GROUP, "assigned_to": "me"}, {"assigned_to"}),
    ({"title": "x", "task_group_id": GROUP, "position": 0}, {"position"}),
    ({"title": "x", "task_group_id": GROUP, "description": "nul\u0000"}, {"description"}),
    ({"title": "x", "task_group_id": GROUP, "id": 5, "created_at": "2026-01-01T00:00:00Z"}, {"id", "created_at"}),
    ({"title": "x", "task_group_id": GROUP, "colour": "red"}, {"colour"}),
    ({"title": None, "task_group_id": None, "status": None}, {"title", "task_group_id", "status"}),
]


@pytest.mark.parametrize(("body", "fields"), BAD_BODIES)
async def test_create_names_each_bad_field(client, pool, project: Project, seeded: dict, body: dict,
                                           fields: set[str]) -> None:
    body = {k: project.group_id if v == GROUP else v for k, v in body.items()}
    before = await snapshot(pool, project)
    r = await client.post("/api/v1/tasks", json=body, headers=project.headers)
    assert_error(r, 422, "validation_failed", fields)
    assert await snapshot(pool, project) == before


@pytest.mark.parametrize(("body", "fields"), [
    ({"title": ""}, {"title"}),
    ({"task_group_id": None}, {"task_group_id"}),
    ({"status": "archived", "position": -1}, {"status", "position"}),
    ({"updated_at": "2020-01-01T00:00:00Z"}, {"updated_at"}),
    ({"subtasks_count": 3}, {"subtasks_count"}),
])
async def test_update_names_each_bad_field(client, pool, project: Project, seeded: dict, body: dict,
                                           fields: set[str]) -> None:
    before = await snapshot(pool, project)
    r = await client.put(f"/api/v1/tasks/{seeded['id']}", json=body, headers=project.headers)
    assert_error(r, 422, "validation_failed", fields)
    assert await snapshot(pool, project) == before


async def test_references_outside_the_project(client, pool, project: Project, seeded: dict) -> None:
    other = await make_project(pool)
    before = await snapshot(pool, project)
    r = await client.post("/api/v1/tasks", json={"title": "x", "task_group_id": other.group_id},
                          headers=project.headers)
    assert_error(r, 422, "validation_failed", {"task_group_id"})
    r = await client.post("/api/v1/tasks", json={"title": "x", "task_group_id": project.group_id,
                                                 "assigned_to": other.admin_id}, headers=project.headers)
    assert_error(r, 422, "validation_failed", {"assigned_to"})
    r = await client.put(f"/api/v1/tasks/{seeded['id']}", json={"task_group_id": other.group_id},
                         headers=project.headers)
    assert_error(r, 422, "validation_failed", {"task_group_id"})
    r = await client.put(f"/api/v1/tasks/{seeded['id']}", json={"assigned_to": other.admin_id, "title": "new"},
                         headers=project.headers)
    assert_error(r, 422, "validation_failed", {"assigned_to"})
    assert await snapshot(pool, project) == before


@pytest.mark.parametrize("raw", [b"{", b'{"title": "x",}', b"\xff\xfe", b"", b'{"a": 1e400}',
                                 b"[" * 100_000 + b"]" * 100_000, b'{"title": "\\ud800"}'])
async def test_unreadable_json_is_400(client, pool, project: Project, seeded: dict, raw: bytes) -> None:
    before = await snapshot(pool, project)
    headers = {**project.headers, "Content-Type": "application/json"}
    r = await client.post("/api/v1/tasks", content=raw, headers=headers)
    assert_error(r, 400, "bad_request")
    r = await client.put(f"/api/v1/tasks/{seeded['id']}", content=raw, headers=headers)
    assert_error(r, 400, "bad_request")
    assert await snapshot(pool, project) == before


@pytest.mark.parametrize("raw", [b"[]", b'"title"', b"42", b"null"])
async def test_body_that_is_not_an_object_is_422(client, project: Project, raw: bytes) -> None:
    r = await client.post("/api/v1/tasks", content=raw,
                          headers={**project.headers, "Content-Type": "application/json"})
    assert_error(r, 422, "validation_failed", {"body"})


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_non_json_content_type_is_415(client, pool, project: Project, seeded: dict,
                                            content_type: str | None) -> None:
    before = await snapshot(pool, project)
    headers = dict(project.headers)
    if content_type:
        headers["Content-Type"] = content_type
    body = b'{"title": "x", "task_group_id": %d}' % project.group_id
    assert_error(await client.post("/api/v1/tasks", content=body, headers=headers), 415, "unsupported_media_type")
    assert_error(await client.put(f"/api/v1/tasks/{seeded['id']}", content=body, headers=headers), 415,
                 "unsupported_media_type")
    assert await snapshot(pool, project) == before


async def test_json_content_type_with_charset_is_accepted(client, project: Project) -> None:
    body = b'{"title": "x", "task_group_id": %d}' % project.group_id
    r = await client.post("/api/v1/tasks", content=body,
                          headers={**project.headers, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


async def test_body_over_one_mebibyte_is_413(client, pool, project: Project) -> None:
    body = b'{"title": "x", "task_group_id": %d, "description": "%s"}' % (project.group_id, b"a" * (1 << 20))
    r = await client.post("/api/v1/tasks", content=body,
                          headers={**project.headers, "Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")

    async def chunks():
        for _ in range(20):
            yield b" " * 65536
    r = await client.post("/api/v1/tasks", content=chunks(),
                          headers={**project.headers, "Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")
    assert await snapshot(pool, project) == []


@pytest.mark.parametrize("query", [
    "page=0", "page=-1", "page=abc", "page=1.5", "page=99999999999999999999999", "per_page=0", "per_page=101",
    "per_page=true", "task_group_id=x", "task_group_id=0", "assigned_to=-3", "status=done", "status=",
    "page=%201", "page=1_0",
])
async def test_bad_query_parameters_are_422(client, project: Project, query: str) -> None:
    r = await client.get(f"/api/v1/tasks?{query}", headers=project.headers)
    name = query.split("=", 1)[0]
    assert_error(r, 422, "validation_failed", {name})


async def test_several_bad_parameters_are_named_together(client, project: Project) -> None:
    r = await client.get("/api/v1/tasks?page=0&per_page=1000&status=nope", headers=project.headers)
    assert_error(r, 422, "validation_failed", {"page", "per_page", "status"})


@pytest.mark.parametrize("task_id", ["abc", "0", "-1", "1.0", "99999999999999999999999", "9223372036854775808"])
async def test_bad_task_ids_are_404(client, project: Project, task_id: str) -> None:
    for method in ("GET", "DELETE"):
        assert_error(await client.request(method, f"/api/v1/tasks/{task_id}", headers=project.headers),
                     404, "not_found")
    r = await client.put(f"/api/v1/tasks/{task_id}", json={"title": "x"}, headers=project.headers)
    assert_error(r, 404, "not_found")


async def test_unsupported_methods_are_405(client, project: Project, seeded: dict) -> None:
    assert_error(await client.patch(f"/api/v1/tasks/{seeded['id']}", json={}, headers=project.headers),
                 405, "method_not_allowed")
    assert_error(await client.delete("/api/v1/tasks", headers=project.headers), 405, "method_not_allowed")
    assert_error(await client.post("/api/v1/task_groups", json={}, headers=project.headers), 405,
                 "method_not_allowed")


async def test_unknown_route_is_json_404(client, project: Project) -> None:
    assert_error(await client.get("/api/v1/nope", headers=project.headers), 404, "not_found")


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer pk_live_short", "Token {token}",
    "Bearer {token}x", "Bearer {mangled}", "Bearer pk_prod_{rest}",
])
async def test_missing_or_malformed_token_is_401(client, project: Project, authorization: str | None) -> None:
    headers = {}
    if authorization is not None:
        mangled = project.token[:-7] + ("A" if project.token[-7] != "A" else "B") + project.token[-6:]
        headers["Authorization"] = authorization.format(token=project.token, mangled=mangled,
                                                        rest=project.token[8:])
    r = await client.get("/api/v1/tasks", headers=headers)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == 'Bearer realm="PathPro", error="invalid_token"'


async def test_token_is_not_accepted_in_query_or_cookie(client, project: Project) -> None:
    r = await client.get(f"/api/v1/tasks?access_token={project.token}")
    assert_error(r, 401, "unauthorized")
    r = await client.get("/api/v1/tasks", headers={"Cookie": f"token={project.token}"})
    assert_error(r, 401, "unauthorized")


async def test_revoked_token_is_401(client, pool, project: Project) -> None:
    await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", project.token_id)
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert_error(r, 401, "unauthorized")
