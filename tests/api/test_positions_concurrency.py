"""Positions stay 1..n in every group while many creates, moves and deletes run at once."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import httpx

from tests.conftest import Project, make_project


async def assert_dense(pool: asyncpg.Pool, project: Project) -> int:
    rows = await pool.fetch(
        "SELECT task_group_id, array_agg(position ORDER BY position) AS p FROM tasks WHERE project_id = $1 "
        "GROUP BY task_group_id", project.id)
    for row in rows:
        assert row["p"] == list(range(1, len(row["p"]) + 1)), row
    return sum(len(r["p"]) for r in rows)


async def seed_tasks(client: httpx.AsyncClient, project: Project, groups: list[int], n: int) -> list[int]:
    ids = []
    for i in range(n):
        r = await client.post("/api/v1/tasks", json={"title": f"seed{i}", "task_group_id": groups[i % len(groups)]},
                              headers=project.headers)
        ids.append(r.json()["data"]["id"])
    return ids


async def burst(clients: list[httpx.AsyncClient], project: Project, groups: list[int], ids: list[int],
                seed: int, operations: int) -> None:
    rng = random.Random(seed)
    ops = []
    for i in range(operations):
        client = clients[i % len(clients)]
        kind = rng.choice(["create", "move", "move", "delete"])
        if kind == "create":
            body: dict[str, object] = {"title": f"t{i}", "task_group_id": rng.choice(groups)}
            if rng.random() < 0.5:
                body["position"] = rng.randint(1, 6)
            ops.append(client.post("/api/v1/tasks", json=body, headers=project.headers))
        elif kind == "move":
            body = {"position": rng.randint(1, 8)}
            if rng.random() < 0.5:
                body["task_group_id"] = rng.choice(groups)
            ops.append(client.put(f"/api/v1/tasks/{rng.choice(ids)}", json=body, headers=project.headers))
        else:
            ops.append(client.delete(f"/api/v1/tasks/{rng.choice(ids)}", headers=project.headers))
    for r in await asyncio.gather(*ops):
        assert r.status_code in (200, 201, 204, 404), r.text  # 404: another request deleted that task first


async def test_one_group_under_concurrent_churn(client, pool) -> None:
    project = await make_project(pool, rate_limit=100_000)  # the burst is far above the default limit
    ids = await seed_tasks(client, project, [project.group_id], 6)
    await burst([client], project, [project.group_id], ids, seed=1, operations=80)
    await assert_dense(pool, project)


async def test_two_groups_on_two_replicas(client, pool, run_server) -> None:
    project = await make_project(pool, groups=2, rate_limit=100_000)
    groups = [r["id"] for r in await pool.fetch("SELECT id FROM task_groups WHERE project_id = $1", project.id)]
    ids = await seed_tasks(client, project, groups, 8)
    replicas = [run_server(), run_server()]
    async with httpx.AsyncClient(base_url=replicas[0].url, timeout=30) as a, \
            httpx.AsyncClient(base_url=replicas[1].url, timeout=30) as b:
        await burst([a, b], project, groups, ids, seed=2, operations=120)
    total = await assert_dense(pool, project)
    meta = (await client.get("/api/v1/tasks", headers=project.headers)).json()["meta"]
    assert meta["total"] == total
