"""A PostgreSQL and a Redis of the test's own, to stop and start mid-load (never the shared ones)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.conftest import free_port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return found[-1]


class PrivatePostgres:
    """initdb + pg_ctl in a temp dir on a free loopback port; run as user postgres when we are root."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pathpro-pg-"))
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.folder, pg.pw_uid, pg.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", str(self.folder / "data"), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self) -> None:
        # fast: sessions are cut off mid-transaction, as when the server goes away for real
        self._run(_pg_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pathpro-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_timeout=1) as r:
                    r.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
