"""Access log lines, request ids and the Prometheus endpoint."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.conftest import Project, make_project


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "pathpro.access"]


async def test_one_json_line_per_request_without_the_token(client, project: Project, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pathpro.access")
    r = await client.get("/api/v1/tasks/12345", headers={**project.headers, "X-Request-Id": "abc-123"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "abc-123"
    [line] = _lines(caplog)
    assert line["request_id"] == "abc-123"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/tasks/{task_id}"
    assert line["status"] == 404
    assert line["token_id"] == project.token_id
    assert line["project_id"] == project.id
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert project.token not in caplog.text


async def test_insane_request_id_is_replaced(client, project: Project, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pathpro.access")
    r = await client.get("/api/v1/tasks", headers={**project.headers, "X-Request-Id": "x" * 500})
    generated = r.headers["x-request-id"]
    assert generated != "x" * 500 and len(generated) == 32
    assert _lines(caplog)[0]["request_id"] == generated


async def test_unauthenticated_and_unmatched_requests_are_logged_too(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pathpro.access")
    await client.get("/api/v1/tasks", headers={"Authorization": "Bearer pk_live_wrong"})
    await client.get("/no/such/path/42")
    first, second = _lines(caplog)
    assert (first["status"], first["token_id"], first["route"]) == (401, None, "/api/v1/tasks")
    assert (second["status"], second["route"]) == (404, "unmatched")
    assert "pk_live_wrong" not in caplog.text


async def test_probes_are_not_logged(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pathpro.access")
    await client.get("/healthz")
    await client.get("/readyz")
    assert _lines(caplog) == []


async def test_metrics_count_requests_by_route_and_status(client, project: Project) -> None:
    await client.get(f"/api/v1/tasks/{2**40}", headers=project.headers)
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'pathpro_http_requests_total{method="GET",route="/api/v1/tasks/{task_id}",status="404"}' in text
    assert ('pathpro_http_request_duration_seconds_bucket{le="0.005",method="GET",'
            'route="/api/v1/tasks/{task_id}",status="404"}') in text
    for name in ("pathpro_rate_limited_total", "pathpro_token_cache_total", "pathpro_redis_fallback_total",
                 "pathpro_db_pool_in_use"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert str(2**40) not in text


async def test_metrics_add_up_over_workers(run_server, project: Project) -> None:
    server = run_server(workers=2)
    series = 'pathpro_http_requests_total{method="GET",route="/api/v1/task_groups",status="200"}'
    # a fresh connection for each request, so both workers take some
    close = {**project.headers, "Connection": "close"}
    async with httpx.AsyncClient(base_url=server.url) as c:
        for _ in range(20):
            assert (await c.get("/api/v1/task_groups", headers=close)).status_code == 200
        # whichever worker answers the scrape reports the sum over both
        for _ in range(5):
            text = (await c.get("/metrics", headers={"Connection": "close"})).text
            [line] = [ln for ln in text.splitlines() if ln.startswith(series)]
            assert float(line.rsplit(" ", 1)[1]) == 20.0
            assert "pathpro_db_pool_in_use 0.0" in text


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_token_cache_and_rate_limit_are_counted(client, pool) -> None:
    project = await make_project(pool, rate_limit=2)
    misses, hits = _sample("pathpro_token_cache_total", {"result": "miss"}), \
        _sample("pathpro_token_cache_total", {"result": "hit"})
    refused = _sample("pathpro_rate_limited_total")
    statuses = [(await client.get("/api/v1/task_groups", headers=project.headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # the first request fills the cache, the next two are served from it
    assert _sample("pathpro_token_cache_total", {"result": "miss"}) == misses + 1
    assert _sample("pathpro_token_cache_total", {"result": "hit"}) == hits + 2
    assert _sample("pathpro_rate_limited_total") == refused + 1
