"""The bad inputs a fuzzer rarely sends, against a real `pathpro serve` (the transport matters here)."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from service.settings import Settings
from tests.conftest import Project, free_port, make_project
from tests.prod.topology import Replica, server_env

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """One real server for the module: each test here leaves it as it found it."""
    replica = Replica(free_port(), server_env(settings), tmp_path_factory.mktemp("hostile") / "server.log")
    replica.start()
    yield replica
    replica.stop()


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _send_until_answered(sock: socket.socket, head: bytes, chunks, limit: int) -> tuple[int, int, bytes]:  # type: ignore[no-untyped-def]
    """Send `head`, then chunks until the server answers; (status, bytes of body sent, response body)."""
    sock.sendall(head)
    sent = 0
    for chunk in chunks:
        if select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(chunk)
        except OSError:
            break  # the server closed the connection, or stopped reading it
        sent += len(chunk)
        if sent > limit:
            break
    status, _, body = _read_response(sock)
    return status, sent, body


async def _still_serves(url: str, project: Project) -> None:
    async with httpx.AsyncClient() as c:
        assert (await c.get(f"{url}/api/v1/tasks", headers=project.headers)).status_code == 200


async def test_json_nested_100000_deep_is_a_400(server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    headers = {**project.headers, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as c:
        for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
            r = await c.post(f"{server.url}/api/v1/tasks", content=body, headers=headers)
            assert r.status_code == 400
            assert r.json()["error"]["code"] == "bad_request"
    await _still_serves(server.url, project)
    assert "Traceback" not in server.log.read_text()


async def test_a_100_mib_body_is_refused_before_it_is_read(server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    size = 100 * MIB
    head = (f"POST /api/v1/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {project.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    with _connect(server.url) as sock:
        status, sent, body = _send_until_answered(sock, head, iter(lambda: b" " * 65536, None), size)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # answered from the declared length, long before the body was through
    assert sent < size // 2
    await _still_serves(server.url, project)


async def test_a_chunked_body_over_the_limit_is_a_413(server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    head = (f"POST /api/v1/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {project.token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with _connect(server.url) as sock:
        status, sent, body = _send_until_answered(sock, head, (chunk for _ in range(1600)), 100 * MIB)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # answered once the limit was passed, not after the whole 100 MiB stream
    assert sent < 50 * MIB
    await _still_serves(server.url, project)


async def test_lone_surrogates_are_refused_and_store_nothing(server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    headers = {**project.headers, "Content-Type": "application/json"}
    url = f"{server.url}/api/v1/tasks"
    # an escaped lone surrogate, and the same code point as raw (invalid) UTF-8 bytes
    escaped = b'{"title": "bad \\ud800 title", "task_group_id": %d}' % project.group_id
    raw = b'{"title": "bad \xed\xa0\x80 title", "task_group_id": %d}' % project.group_id
    async with httpx.AsyncClient() as c:
        for body in (escaped, raw):
            r = await c.post(url, content=body, headers=headers)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "bad_request"
        assert await pool.fetchval("SELECT count(*) FROM tasks WHERE project_id = $1", project.id) == 0
        # and in a query string
        r = await c.get(f"{url}?status=%ED%A0%80", headers=project.headers)
        assert r.status_code == 422
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("name,value", [
    (b"X-Request-Id", b"abc\x01def"),
    (b"X-Request-Id", b"abc\x7fdef"),
    (b"Authorization", b"Bearer pk_live_\x00abc"),
    (b"Content-Type", b"application/json\x1b[31m"),
])
async def test_control_characters_in_header_values_are_a_clean_400(server, pool: asyncpg.Pool,
                                                                    name: bytes, value: bytes) -> None:
    project = await make_project(pool)
    with _connect(server.url) as sock:
        sock.sendall(b"GET /api/v1/tasks HTTP/1.1\r\nHost: t\r\n" + name + b": " + value + b"\r\n\r\n")
        status, headers, body = _read_response(sock)
    # refused by the HTTP parser itself, or by the service: never a 5xx, never echoed back
    assert status in (400, 401), (status, body)
    assert value not in body
    assert "server" not in headers
    await _still_serves(server.url, project)
    assert "Traceback" not in server.log.read_text()


async def test_obs_text_in_a_request_id_is_replaced_not_echoed(server, pool: asyncpg.Pool) -> None:
    project = await make_project(pool)
    with _connect(server.url) as sock:
        sock.sendall(b"GET /api/v1/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + project.token.encode()
                     + b"\r\nX-Request-Id: caf\xe9\t<script>\r\n\r\n")
        status, headers, _ = _read_response(sock)
    assert status == 200
    assert len(headers["x-request-id"]) == 32 and headers["x-request-id"].isalnum()
