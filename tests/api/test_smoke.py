from tests.conftest import Project


async def test_list_empty_project(client, project: Project) -> None:
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.status_code == 200
    assert r.json() == {"data": [], "meta": {"current_page": 1, "last_page": 1, "per_page": 25, "total": 0}}
