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
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

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
            if not await tokens.revoke(conn, project_id, args.token_id):
                raise AdminError(f"no token {args.token_id} in project {args.slug!r}")
            print(f"revoked token {args.token_id}", file=sys.stderr)

    await _with_conn(work)


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise AdminError("the password must not be empty")
    return password


def _positive(raw: str) -> int:
    value = int(raw)
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
    return p


def serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    # uvloop and httptools (both in uvicorn[standard]) are named, not left to auto-detection, so a
    # missing one fails at start instead of silently serving on the slower pure-Python loop and parser.
    uvicorn.run("service.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                server_header=False, access_log=False, lifespan="on", loop="uvloop", http="httptools")


def dev() -> None:
    """`make run`: use DATABASE_URL and REDIS_URL when set, else embedded servers under .data/."""
    from service import demo, devservers

    with contextlib.ExitStack() as stack:
        data = ROOT / ".data"
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = stack.enter_context(devservers.embedded_postgres(data / "postgres"))
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = stack.enter_context(devservers.embedded_redis(data / "redis"))
        asyncio.run(migrate(os.environ["DATABASE_URL"]))
        asyncio.run(demo.seed_if_empty(os.environ["DATABASE_URL"], "http://127.0.0.1:8000"))
        serve("127.0.0.1", int(os.environ.get("PORT", "8000")))


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
