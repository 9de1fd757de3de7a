"""The docker-compose topology without Docker: `pathpro serve` replicas and nginx, all on loopback.

nginx runs the shipped service/deploy/nginx.conf with only the upstream addresses and the listen port
rewritten, from a main config of its own in a temp dir (never the system service).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.settings import Settings
from tests.conftest import ROOT, free_port

NGINX_CONF = ROOT / "service" / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        raise RuntimeError("nginx is not installed: `make test` installs it (apt-get install nginx-light)")
    return found


def wait_until(check, what: str, timeout: float = 30.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (httpx.TransportError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(interval)


@dataclass
class Replica:
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    generation: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.generation += 1
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        proc = self.process

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"replica exited:\n{self.log.read_text()[-3000:]}")
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

        wait_until(up, f"replica on {self.port}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a container stop sends it; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "PATHPRO_REDIS_PREFIX": settings.redis_prefix,
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@dataclass
class Nginx:
    folder: Path
    upstream_ports: list[int]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def site_config(self) -> str:
        text = NGINX_CONF.read_text()
        servers = re.findall(r"server api-\d+:8000", text)
        assert len(servers) == len(self.upstream_ports), servers
        for original, port in zip(servers, self.upstream_ports, strict=True):
            text = text.replace(original, f"server 127.0.0.1:{port}", 1)
        text, listens = re.subn(r"listen 8080;", f"listen 127.0.0.1:{self.port};", text)
        assert listens == 1
        return text

    def start(self) -> None:
        f = self.folder
        f.mkdir(parents=True, exist_ok=True)
        (f / "pathpro.conf").write_text(self.site_config())
        temp = "\n".join(f"  {kind}_temp_path {f / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                         "uwsgi", "scgi"))
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (f / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {f / 'nginx.pid'};\nerror_log {f / 'error.log'} warn;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log {f / 'access.log'};\n{temp}\n  include {f / 'pathpro.conf'};\n}}\n"
        )
        with (f / "stderr.log").open("ab") as out:
            self.process = subprocess.Popen(
                [nginx_binary(), "-p", str(f), "-e", str(f / "error.log"), "-c", str(f / "nginx.conf")],
                stdout=out, stderr=subprocess.STDOUT,
            )
        proc = self.process

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("nginx exited:\n" + (f / "stderr.log").read_text()
                                   + (f / "error.log").read_text())
            httpx.get(f"{self.url}/healthz", timeout=1)
            return True

        wait_until(up, "nginx")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
