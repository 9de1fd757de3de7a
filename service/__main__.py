"""The `pathpro` command: migrations, the server, and operator tasks.

Each create command prints the new object's id (or the token) alone on stdout so scripts can capture
it; everything meant for people goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as redis

from service import tokens
from service.admin import AdminError, add_member, create_group, create_project, create_user, project_id_of
from service.migrate import migrate
from service.settings import ROOT


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise AdminError("DATABASE_URL is not set")
    return url


async def _with_conn(work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    conn = await asyncpg.connect(_database_url())
    try:
        return await work(conn)
    finally:
        await conn.close()


def _print_tokens(rows: list[tokens.TokenListing]) -> None:
    for t in rows:
        state = "revoked" if t.revoked_at else "active"
        last = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
        print(t.id, t.name, t.masked, t.created_at.isoformat(timespec="seconds"), last, state, sep="\t")


async def _run(args: argparse.Namespace) -> None:
    cmd = args.command
    if cmd == "migrate":
        applied = await migrate(_database_url())
        print(f"applied {len(applied)} migration(s)", file=sys.stderr)
    elif cmd == "project":
        print(await _with_conn(lambda c: create_project(c, args.slug, args.name, args.rate_limit)))
    elif cmd == "user":
        password = args.password if args.password is not None else _read_password()
        print(await _with_conn(lambda c: create_user(c, args.email, args.name, password)))
    elif cmd == "member":
        print(await _with_conn(lambda c: add_member(c, args.slug, args.email, args.role)))
    elif cmd == "group":
        print(await _with_conn(lambda c: create_group(c, args.slug, args.name)))
    elif cmd == "token":
        await _token(args)


async def _token(args: argparse.Namespace) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        project_id = await project_id_of(conn, args.slug)
        if args.action == "create":
            if not 1 <= len(args.name) <= 255:
                raise AdminError("the token name must be 1-255 characters")
            _, token = await tokens.create(conn, project_id, args.name, "test" if args.test else "live",
                                           rate_limit=args.rate_limit)
            print(token)
        elif args.action == "list":
            _print_tokens(await tokens.list_for_project(conn, project_id))
        elif args.action == "revoke":
            async with _redis() as (client, prefix):
                if not await tokens.revoke(conn, client, prefix, project_id, args.token_id,
                                           tombstone_ttl=_tombstone_ttl()):
                    raise AdminError(f"no token {args.token_id} in project {args.slug!r}")
            print(f"revoked token {args.token_id}", file=sys.stderr)
        elif args.action == "set-limit":
            limit = None if args.limit == "default" else _limit(args.limit)
            async with _redis() as (client, prefix):
                if not await tokens.set_rate_limit(conn, client, prefix, project_id, args.token_id, limit):
                    raise AdminError(f"no token {args.token_id} in project {args.slug!r}")
            print(f"token {args.token_id}: rate limit {limit or 'of the project'}", file=sys.stderr)

    await _with_conn(work)


@contextlib.asynccontextmanager
async def _redis() -> AsyncIterator[tuple[redis.Redis, str]]:
    """The service's Redis (REDIS_URL) and key prefix (PATHPRO_REDIS_PREFIX), as `serve` reads them."""
    client = redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                            socket_timeout=2, socket_connect_timeout=2)
    try:
        yield client, os.environ.get("PATHPRO_REDIS_PREFIX", "pathpro:")
    finally:
        await client.aclose()


def _limit(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise AdminError("the limit must be a positive integer, or `default`")
    return int(raw)


def _tombstone_ttl() -> int:
    raw = os.environ.get("PATHPRO_TOMBSTONE_TTL", "")
    return int(raw) if raw.isdigit() else 86400


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise AdminError("the password must not be empty")
    return password


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pathpro", description="PathPro Developer API service")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")

    serve = sub.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive, default=1)

    sub.add_parser("dev", help="migrate, seed a demo project on an empty database, and serve (make run)")

    project = sub.add_parser("project").add_subparsers(dest="action", required=True)
    pc = project.add_parser("create")
    pc.add_argument("slug")
    pc.add_argument("--name", required=True)
    pc.add_argument("--rate-limit", type=_positive)

    user = sub.add_parser("user").add_subparsers(dest="action", required=True)
    uc = user.add_parser("create")
    uc.add_argument("email")
    uc.add_argument("--name", required=True)
    uc.add_argument("--password", help="read from stdin when not given")

    member = sub.add_parser("member").add_subparsers(dest="action", required=True)
    ma = member.add_parser("add")
    ma.add_argument("slug")
    ma.add_argument("email")
    ma.add_argument("--role", required=True, choices=("admin", "team_member", "community_member"))

    group = sub.add_parser("group").add_subparsers(dest="action", required=True)
    gc = group.add_parser("create")
    gc.add_argument("slug")
    gc.add_argument("name")

    token = sub.add_parser("token").add_subparsers(dest="action", required=True)
    tc = token.add_parser("create")
    tc.add_argument("slug")
    tc.add_argument("--name", required=True)
    tc.add_argument("--test", action="store_true", help="a pk_test_ token instead of pk_live_")
    tc.add_argument("--rate-limit", type=_positive, help="requests per minute for this token alone")
    tl = token.add_parser("list")
    tl.add_argument("slug")
    tr = token.add_parser("revoke")
    tr.add_argument("slug")
    tr.add_argument("token_id", type=int)
    ts = token.add_parser("set-limit", help="change a token's own requests per minute")
    ts.add_argument("slug")
    ts.add_argument("token_id", type=int)
    ts.add_argument("limit", help="a positive integer, or `default` for the project's limit")
    return p


def serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from service.metrics import multiprocess_metrics
    from service.settings import Settings

    # SIGTERM: uvicorn stops accepting, lets requests in flight finish for up to shutdown_timeout
    # seconds, then runs the lifespan shutdown that closes the pools
    with multiprocess_metrics(workers):
        uvicorn.run("service.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    server_header=False, access_log=False, lifespan="on",
                    # uvloop and httptools (both in uvicorn[standard]) are named, not auto-detected, so a
                    # missing one fails at start instead of silently serving on the slower pure-Python pair
                    loop="uvloop", http="httptools",
                    # the client address comes from the app, which believes X-Forwarded-For only from the
                    # proxies named in PATHPRO_TRUSTED_PROXIES
                    proxy_headers=False,
                    timeout_graceful_shutdown=Settings.from_env().shutdown_timeout)


def dev() -> None:
    """`make run`: use DATABASE_URL and REDIS_URL when set, else embedded servers under .data/.

    The server runs as a child process: uvicorn re-raises the signal that stopped it, so this process
    would never get to stop the embedded servers if it served in-process.
    """
    from service import demo, devservers

    with contextlib.ExitStack() as stack:
        data = ROOT / ".data"
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = stack.enter_context(devservers.embedded_postgres(data / "postgres"))
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = stack.enter_context(devservers.embedded_redis(data / "redis"))
        port = os.environ.get("PORT", "8000")
        asyncio.run(migrate(os.environ["DATABASE_URL"]))
        asyncio.run(demo.seed_if_empty(os.environ["DATABASE_URL"], f"http://127.0.0.1:{port}"))
        child = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", port])
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, _frame: child.send_signal(signum))
        child.wait()


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.host, args.port, args.workers)
        elif args.command == "dev":
            dev()
        else:
            asyncio.run(_run(args))
    except AdminError as exc:
        print(f"pathpro: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"pathpro: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
