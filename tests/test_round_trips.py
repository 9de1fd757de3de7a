"""PostgreSQL round trips per request on the hot path, counted on the wire.

A list page with its exact total is one statement: one round trip, also when filtered or paged by
cursor, and the pool hands the connection back without a second one. Auth is subtracted by measuring a
request that does everything a list request does except the handler's own work (a task id that cannot
exist is refused before any query), so the count stays the list's alone whatever auth costs.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.conftest import Project, make_project
from tests.pgwire import counting_proxy, upstream

REQUESTS = 10


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with counting_proxy(settings.database_url) as (url, counter):
        # one pooled connection, so every request meets statements it has prepared already
        app = create_app(replace(settings, database_url=url, db_pool_min=1, db_pool_max=1))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client, counter


async def _round_trips(client: httpx.AsyncClient, counter: Any, project: Project, path: str,
                      status: int) -> float:
    """The median of the round trips of REQUESTS requests, each counted on its own.

    The median, so that work the service does beside requests (a once-a-minute write of a token's last
    use, a periodic sweep) cannot be charged to the request it happened to run next to.
    """
    for _ in range(2):  # warm: prepare the statements, learn the types
        assert (await client.get(path, headers=project.headers)).status_code == status
    counts = []
    for _ in range(REQUESTS):
        before = counter.round_trips
        r = await client.get(path, headers=project.headers)
        assert r.status_code == status, r.text
        counts.append(counter.round_trips - before)
    return statistics.median(counts)


async def test_a_list_page_with_its_total_is_one_round_trip(counted, pool) -> None:
    client, counter = counted
    project = await make_project(pool, rate_limit=100_000)  # many requests, never limited
    for i in range(30):
        r = await client.post("/api/v1/tasks", headers=project.headers,
                              json={"title": f"Task {i}", "task_group_id": project.group_id,
                                    "status": "planned" if i % 2 else "backlog"})
        assert r.status_code == 201
    auth_only = await _round_trips(client, counter, project, "/api/v1/tasks/0", 404)

    page = await client.get("/api/v1/tasks?per_page=5", headers=project.headers)
    assert page.json()["meta"]["total"] == 30
    next_url = page.headers["link"].split(";")[0].strip("<>")
    paths = [
        "/api/v1/tasks",
        "/api/v1/tasks?page=3&per_page=5",
        f"/api/v1/tasks?status=planned&task_group_id={project.group_id}",
        next_url,
    ]
    for path in paths:
        assert await _round_trips(client, counter, project, path, 200) - auth_only == 1, path


def test_the_proxy_reaches_a_server_named_in_the_query() -> None:
    # the embedded server's URL names its unix socket in the query; the proxy used to go to 127.0.0.1:5432
    assert upstream("postgresql://postgres:@/postgres?host=/tmp/pg&port=5433&application_name=x") == (
        "/tmp/pg/.s.PGSQL.5433", {"application_name": "x"})
    assert upstream("postgresql://postgres@db.example:6543/app") == (("db.example", 6543), {})
