"""The `pathpro` operator CLI: ids alone on stdout, one-line errors, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg
import redis.asyncio as aioredis

from service import tokencache, tokens
from service.settings import Settings
from tests.conftest import ROOT


def pathpro(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI on the session's database, Redis and key prefix (never the machine's own keys)."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "PATHPRO_REDIS_PREFIX": settings.redis_prefix}
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, env=env, timeout=60)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def fails(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


async def test_operator_workflow(settings: Settings, pool: asyncpg.Pool, redis_client: aioredis.Redis) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    email = f"{slug}@Example.com"
    project_id = int(ok(pathpro(settings, "project", "create", slug, "--name", "CLI", "--rate-limit", "120")))
    assert await pool.fetchval("SELECT api_rate_limit FROM projects WHERE id = $1", project_id) == 120
    user_id = int(ok(pathpro(settings, "user", "create", email, "--name", "Ops", stdin="s3cret-pass\n")))
    assert await pool.fetchval("SELECT password_hash LIKE '$argon2id$%' FROM users WHERE id = $1", user_id)
    # emails are unique whatever their case
    assert int(ok(pathpro(settings, "member", "add", slug, email.upper(), "--role", "admin"))) == user_id
    group_id = int(ok(pathpro(settings, "group", "create", slug, "Backlog")))
    assert await pool.fetchval("SELECT project_id FROM task_groups WHERE id = $1", group_id) == project_id

    token = ok(pathpro(settings, "token", "create", slug, "--name", "CI/CD Pipeline"))
    test_token = ok(pathpro(settings, "token", "create", slug, "--name", "Development", "--test"))
    assert tokens.well_formed(token) and token.startswith("pk_live_")
    assert tokens.well_formed(test_token) and test_token.startswith("pk_test_")

    listing = ok(pathpro(settings, "token", "list", slug)).splitlines()
    assert len(listing) == 2
    rows = [line.split("\t") for line in listing]
    assert {r[1] for r in rows} == {"CI/CD Pipeline", "Development"}
    assert {r[2] for r in rows} == {f"pk_live_****{token[-4:]}", f"pk_test_****{test_token[-4:]}"}
    assert all(r[4] == "never" and r[5] == "active" for r in rows)
    assert token not in "\n".join(listing) and test_token not in "\n".join(listing)

    live_id = next(r[0] for r in rows if r[1] == "CI/CD Pipeline")
    ok(pathpro(settings, "token", "revoke", slug, live_id))
    ok(pathpro(settings, "token", "revoke", slug, live_id))  # twice is harmless
    states = {r.split("\t")[1]: r.split("\t")[5] for r in ok(pathpro(settings, "token", "list", slug)).splitlines()}
    assert states == {"CI/CD Pipeline": "revoked", "Development": "active"}
    # the revoke's tombstone went to this session's Redis, under its prefix
    assert await redis_client.exists(tokencache.token_keys(settings.redis_prefix, tokens.digest(token)).tombstone)


async def test_bad_arguments_are_one_line_errors(settings: Settings) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    ok(pathpro(settings, "project", "create", slug, "--name", "First"))
    assert "exists already" in fails(pathpro(settings, "project", "create", slug, "--name", "Again"))
    fails(pathpro(settings, "project", "create", "Not A Slug!", "--name", "x"))
    assert "no project" in fails(pathpro(settings, "group", "create", "no-such-project", "G"))
    assert "no user" in fails(pathpro(settings, "member", "add", slug, "nobody@example.com", "--role", "admin"))
    assert "no project" in fails(pathpro(settings, "token", "create", "no-such-project", "--name", "x"))
    assert "no token" in fails(pathpro(settings, "token", "revoke", slug, "999999999"))
    email = f"{slug}@example.com"
    ok(pathpro(settings, "user", "create", email, "--name", "U", "--password", "pw"))
    assert "exists already" in fails(pathpro(settings, "user", "create", email.upper(), "--name", "U",
                                             "--password", "pw"))
    assert "not an email" in fails(pathpro(settings, "user", "create", "nope", "--name", "U", "--password", "p"))


def test_argument_errors_exit_non_zero_without_traceback(settings: Settings) -> None:
    for args in (["member", "add", "x", "a@b.co", "--role", "owner"], ["project", "create", "x"],
                 ["token", "revoke", "x", "abc"], ["project", "create", "x", "--name", "n", "--rate-limit", "0"]):
        result = pathpro(settings, *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""


def test_missing_database_url_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "service", "migrate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.strip() == "pathpro: DATABASE_URL is not set"
