"""Helpers for the request-path tests: a private Redis that may be stopped, apps with their own settings,
and proxies that count the work the request path does."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from service.app import create_app
from service.settings import Settings
from tests.conftest import free_port


class PrivateRedis:
    """A redis-server of this test alone, on a free port, that it may stop, restart and flush.

    Its data directory survives restarts, so `SAVE` then `stop` then `start` brings back old data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--dbfilename", "dump.rdb",
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stops the server without saving: what it had since the last SAVE is lost, as in a crash."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM with --save "" exits without writing a snapshot
        self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def app_client(settings: Settings, **changes: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app of its own (own settings, own gate) and an httpx client on it."""
    app = create_app(dataclasses.replace(settings, **changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


class Counting:
    """Wraps an object and counts calls of its coroutine methods by name."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


def count_redis_commands(client: Any) -> list[str]:
    """Records the name of every command the client sends (EVALSHA for a script call)."""
    seen: list[str] = []
    original = client.execute_command

    async def execute_command(*args: Any, **options: Any) -> Any:
        seen.append(str(args[0]))
        return await original(*args, **options)

    client.execute_command = execute_command
    return seen


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
