"""Real responses checked against the OpenAPI document the service publishes."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import Project


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    return doc


def check(document: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    operation = document["paths"][path][method]
    documented = operation["responses"]
    assert str(response.status_code) in documented, (path, method, response.status_code, response.text)
    spec = documented[str(response.status_code)]
    if "content" not in spec:
        assert response.content == b""
        return
    schema = spec["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(response.json())
    for header in spec.get("headers", {}):
        assert header.lower() in response.headers


async def test_responses_match_the_document(client, document, project: Project) -> None:
    h = project.headers
    created = await client.post("/api/v1/tasks", json={"title": "Doc", "task_group_id": project.group_id}, headers=h)
    check(document, "/api/v1/tasks", "post", created)
    task_id = created.json()["data"]["id"]
    task_path = "/api/v1/tasks/{task_id}"
    cases = [
        ("/api/v1/tasks", "get", await client.get("/api/v1/tasks", headers=h)),
        ("/api/v1/tasks", "get", await client.get("/api/v1/tasks?status=planned&page=3", headers=h)),
        ("/api/v1/tasks", "get", await client.get("/api/v1/tasks?per_page=0", headers=h)),
        ("/api/v1/tasks", "get", await client.get("/api/v1/tasks")),
        ("/api/v1/tasks", "post", await client.post("/api/v1/tasks", json={"title": ""}, headers=h)),
        ("/api/v1/tasks", "post", await client.post("/api/v1/tasks", content=b"{", headers={
            **h, "Content-Type": "application/json"})),
        ("/api/v1/tasks", "post", await client.post("/api/v1/tasks", content=b"x", headers=h)),
        (task_path, "get", await client.get(f"/api/v1/tasks/{task_id}", headers=h)),
        (task_path, "get", await client.get("/api/v1/tasks/0", headers=h)),
        (task_path, "put", await client.put(f"/api/v1/tasks/{task_id}", json={"status": "completed"}, headers=h)),
        (task_path, "put", await client.put(f"/api/v1/tasks/{task_id}", json={"status": 1}, headers=h)),
        (task_path, "put", await client.put("/api/v1/tasks/999999999", json={}, headers=h)),
        ("/api/v1/task_groups", "get", await client.get("/api/v1/task_groups", headers=h)),
        (task_path, "delete", await client.delete(f"/api/v1/tasks/{task_id}", headers=h)),
        (task_path, "delete", await client.delete(f"/api/v1/tasks/{task_id}", headers=h)),
    ]
    for path, method, response in cases:
        check(document, path, method, response)


async def test_every_route_is_documented(app, document) -> None:
    routes = {(r.path, m.lower()) for r in app.routes if r.path.startswith("/api/v1/") and
              r.path != "/api/v1/openapi.json" for m in r.methods if m != "HEAD"}
    documented = {(p, m) for p, ops in document["paths"].items()
                  for m in ops if m != "parameters"}
    assert routes == documented
