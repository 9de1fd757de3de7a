"""The docker-compose topology on loopback: three `pathpro serve` replicas behind the shipped nginx config."""

from __future__ import annotations

import asyncio
import collections
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from service.settings import Settings
from tests.conftest import Project, free_port, make_project
from tests.prod.topology import Nginx, Replica, server_env, wait_until


@dataclass
class Cluster:
    replicas: list[Replica]
    nginx: Nginx


@pytest.fixture(scope="module")
def cluster(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("cluster")
    # as in docker-compose.yml: nginx's address is the one trusted proxy
    env = server_env(settings, PATHPRO_SHUTDOWN_TIMEOUT="10", PATHPRO_TRUSTED_PROXIES="127.0.0.1")
    replicas = [Replica(free_port(), env, folder / f"replica-{i}.log") for i in range(3)]
    nginx = Nginx(folder / "nginx", [r.port for r in replicas])
    try:
        for replica in replicas:
            replica.start()
        nginx.start()
        yield Cluster(replicas, nginx)
    finally:
        nginx.stop()
        for replica in replicas:
            replica.kill()


@pytest.fixture
async def lb(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.nginx.url, timeout=30) as c:
        yield c


def _served(replica: Replica, route: str) -> float:
    """How many requests this replica's current process answered on `route` (any method and status)."""
    text = httpx.get(f"{replica.url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pathpro_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_nginx_spreads_requests_over_all_three_replicas(cluster: Cluster, lb, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    for _ in range(30):
        r = await lb.get("/api/v1/task_groups", headers=project.headers)
        assert r.status_code == 200
    for replica in cluster.replicas:
        assert _served(replica, "/api/v1/task_groups") > 0, replica.port


async def test_nginx_shows_no_version_and_keeps_the_request_id(lb, project: Project) -> None:
    r = await lb.get("/api/v1/tasks", headers={**project.headers, "X-Request-Id": "trace-42"})
    assert r.status_code == 200
    assert r.headers["server"] == "nginx"
    assert r.headers["x-request-id"] == "trace-42"
    generated = (await lb.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


async def test_metrics_are_not_published_through_the_load_balancer(lb) -> None:
    r = await lb.get("/metrics")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_bodies_over_the_limit_get_json_413_from_either_layer(lb, project: Project) -> None:
    headers = {**project.headers, "Content-Type": "application/json"}
    # over nginx's client_max_body_size: refused by nginx
    r = await lb.post("/api/v1/tasks", content=b"x" * (3 * 1024 * 1024), headers=headers)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    # under nginx's limit but over the service's
    r = await lb.post("/api/v1/tasks", content=b"x" * (1024 * 1024 + 10), headers=headers)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_rolling_restart_under_steady_load_loses_no_request(
    cluster: Cluster, lb, pool: asyncpg.Pool,
) -> None:
    project = await make_project(pool, rate_limit=1_000_000)  # load, not the limit, is under test
    task_ids = []
    for i in range(4):
        r = await lb.post("/api/v1/tasks", json={"title": f"t{i}", "task_group_id": project.group_id},
                          headers=project.headers)
        assert r.status_code == 201
        task_ids.append(r.json()["data"]["id"])

    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        # GET and PUT: the idempotent methods nginx retries on another replica (README: POST is not)
        i = 0
        while not stop.is_set() and i < 20_000:
            i += 1
            task_id = task_ids[(n + i) % len(task_ids)]
            try:
                if i % 3 == 0:
                    r = await lb.put(f"/api/v1/tasks/{task_id}", json={"title": f"w{n}-{i}"},
                                     headers=project.headers)
                elif i % 3 == 1:
                    r = await lb.get(f"/api/v1/tasks/{task_id}", headers=project.headers)
                else:
                    r = await lb.get("/api/v1/tasks", headers=project.headers)
            except httpx.TransportError as exc:
                failures.append(repr(exc))
                continue
            outcomes[str(r.status_code)] += 1
            if r.status_code != 200:
                failures.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")

    workers = [asyncio.create_task(worker(n)) for n in range(4)]
    try:
        for replica in cluster.replicas:
            before = sum(outcomes.values())
            # uvicorn re-raises SIGTERM once it has shut down cleanly, so the exit is "killed by SIGTERM"
            assert await asyncio.to_thread(replica.stop) in (0, -15)
            assert replica.log.read_text().count("Application shutdown complete.") == 1, replica.log.read_text()[-3000:]
            await asyncio.to_thread(replica.start)
            # back in rotation (nginx tries it again after fail_timeout) before the next one goes
            await asyncio.to_thread(wait_until, lambda r=replica: _served(r, "/api/v1/tasks/{task_id}") > 0,
                                    "traffic on the restarted replica", 20.0, 0.2)
            assert sum(outcomes.values()) > before, "the load stopped during the restart"
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert failures == []
    assert set(outcomes) == {"200"}
    for replica in cluster.replicas:
        assert replica.generation == 2
        assert "Traceback" not in replica.log.read_text()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"ts"')]


async def test_each_replica_writes_one_json_line_per_request(cluster: Cluster, lb, project: Project) -> None:
    r = await lb.get("/api/v1/tasks", headers={**project.headers, "X-Request-Id": "line-check-1"})
    assert r.status_code == 200

    def logged() -> list[dict]:
        # the line is written once the response has gone, so it may trail the response a little
        return [line for replica in cluster.replicas for line in _json_lines(replica.log.read_text())
                if line["request_id"] == "line-check-1"]

    lines = await asyncio.to_thread(wait_until, logged, "the access line", 10.0)
    assert len(lines) == 1
    assert lines[0]["token_id"] == project.token_id and lines[0]["route"] == "/api/v1/tasks"
    assert all(project.token not in replica.log.read_text() for replica in cluster.replicas)


async def test_no_replica_up_is_a_json_503(tmp_path) -> None:
    nginx = Nginx(tmp_path / "nginx", [free_port(), free_port(), free_port()])
    try:
        await asyncio.to_thread(nginx.start)
        async with httpx.AsyncClient(base_url=nginx.url) as c:
            r = await c.get("/api/v1/tasks")
    finally:
        nginx.stop()
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.json()["error"]["code"] == "service_unavailable"


async def test_the_web_pages_are_served_through_the_load_balancer(lb) -> None:
    r = await lb.get("/login")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
