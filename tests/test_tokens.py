"""Token format, storage, revocation semantics and the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib

import asyncpg
import pytest

from service import tokencache, tokens
from service.settings import Settings
from tests.conftest import ROOT, Project, make_project
from tests.reqpath_support import bearer

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int) -> str:
    digits = ""
    while n:
        n, r = divmod(n, 62)
        digits = ALPHABET[r] + digits
    return digits.rjust(width, "0")


@pytest.mark.parametrize("mode", ["live", "test"])
def test_format_prefix_randomness_and_checksum(mode: str) -> None:
    token = tokens.generate(mode)
    prefix = f"pk_{mode}_"
    assert token.startswith(prefix)
    body, checksum = token[:-6], token[-6:]
    random_part = body[len(prefix):]
    assert set(random_part) <= set(ALPHABET)
    assert len(random_part) * 5.954 >= 160  # log2(62) bits per character
    assert checksum == base62(zlib.crc32(body.encode()), 6)
    assert tokens.well_formed(token)
    assert len({tokens.generate(mode) for _ in range(200)}) == 200


def test_any_single_typo_is_refused_without_io() -> None:
    token = tokens.generate("live")
    for i in range(len(token)):
        for replacement in ("0", "z", "_"):
            if token[i] != replacement:
                assert not tokens.well_formed(token[:i] + replacement + token[i + 1:])
    assert not tokens.well_formed(token[:-1])
    assert not tokens.well_formed(token + "a")
    assert not tokens.well_formed("pk_prod_" + token[8:])
    assert not tokens.well_formed("")


async def test_only_the_digest_and_last_four_are_stored(pool: asyncpg.Pool, project: Project) -> None:
    row = await pool.fetchrow("SELECT * FROM api_tokens WHERE id = $1", project.token_id)
    assert bytes(row["digest"]) == hashlib.sha256(project.token.encode()).digest()
    assert row["last_four"] == project.token[-4:]
    assert project.token not in " ".join(str(v) for v in row.values())
    listing = await tokens.list_for_project(pool, project.id)
    assert [t.masked for t in listing] == [f"pk_live_****{project.token[-4:]}"]


async def test_tokens_only_in_the_authorization_header(client, project: Project) -> None:
    assert (await client.get(f"/api/v1/tasks?token={project.token}")).status_code == 401
    assert (await client.get(f"/api/v1/tasks?access_token={project.token}")).status_code == 401
    r = await client.get("/api/v1/tasks", headers={"Cookie": f"token={project.token}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert project.token not in r.text
    basic = {"Authorization": f"Basic {project.token}"}
    assert (await client.get("/api/v1/tasks", headers=basic)).status_code == 401


async def test_revoking_one_token_leaves_the_others(app, client, pool: asyncpg.Pool, settings: Settings,
                                                    project: Project) -> None:
    _, second = await tokens.create(pool, project.id, "Second", "test")
    assert (await client.get("/api/v1/tasks", headers=bearer(second))).status_code == 200
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    assert await tokens.revoke(pool, app.state.redis, settings.redis_prefix, project.id, project.token_id)
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
    assert (await client.get("/api/v1/tasks", headers=bearer(second))).status_code == 200
    # twice is harmless (here through the gate, as the web pages revoke), and the first time stays
    first = await pool.fetchval("SELECT revoked_at FROM api_tokens WHERE id = $1", project.token_id)
    assert await app.state.gate.revoke(project.id, project.token_id)
    assert await pool.fetchval("SELECT revoked_at FROM api_tokens WHERE id = $1", project.token_id) == first
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401


async def test_a_token_of_another_project_cannot_be_revoked(app, pool: asyncpg.Pool, settings: Settings,
                                                            project: Project, client) -> None:
    other = await make_project(pool)
    assert not await tokens.revoke(pool, app.state.redis, settings.redis_prefix, other.id, project.token_id)
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200


async def test_a_revoked_token_never_comes_back(app, client, pool: asyncpg.Pool, settings: Settings,
                                                project: Project) -> None:
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    await tokens.revoke(pool, app.state.redis, settings.redis_prefix, project.id, project.token_id)
    keys = tokencache.token_keys(settings.redis_prefix, tokens.digest(project.token))
    # the negative entry expires; the next miss asks PostgreSQL again and still refuses
    await app.state.redis.delete(keys.record)
    for _ in range(3):
        assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
    # even a fill of a valid record is refused beside the tombstone
    value = tokencache.encode_record(project.token_id, project.id, 60)
    reply = await app.state.gate.scripts.fill(keys=keys.all,
                                              args=[value, 300, tokencache.WINDOW_US, "m", 60, ""])
    assert reply == [b"tombstoned"]
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "PATHPRO_REDIS_PREFIX": settings.redis_prefix}
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)


async def test_cli_revoke_and_set_limit(client, settings: Settings, project: Project) -> None:
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.headers["X-RateLimit-Limit"] == "60"

    done = _cli(settings, "token", "set-limit", project.slug, str(project.token_id), "7")
    assert done.returncode == 0, done.stderr
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.headers["X-RateLimit-Limit"] == "7"
    assert r.headers["X-RateLimit-Remaining"] == "5"  # the window keeps the two requests made so far

    for bad in ("0", "many"):
        done = _cli(settings, "token", "set-limit", project.slug, str(project.token_id), bad)
        assert done.returncode == 1 and "positive integer" in done.stderr and "Traceback" not in done.stderr
    done = _cli(settings, "token", "set-limit", project.slug, "999999999", "5")
    assert done.returncode == 1 and "no token" in done.stderr

    done = _cli(settings, "token", "set-limit", project.slug, str(project.token_id), "default")
    assert done.returncode == 0
    r = await client.get("/api/v1/tasks", headers=project.headers)
    assert r.headers["X-RateLimit-Limit"] == "60"

    done = _cli(settings, "token", "revoke", project.slug, str(project.token_id))
    assert done.returncode == 0, done.stderr
    assert project.token not in done.stdout + done.stderr
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
    listing = _cli(settings, "token", "list", project.slug)
    assert "revoked" in listing.stdout and project.token not in listing.stdout
