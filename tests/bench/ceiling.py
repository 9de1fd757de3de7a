"""The ceiling of our stack: bare Starlette answering every request with one constant ~1 KB JSON body.

It is served by the service's own `serve()` (only the application is swapped), so whatever server
settings `pathpro serve` uses (loop, HTTP parser, workers, headers) the ceiling uses too.

    python -m tests.bench.ceiling --port 8100 --workers 2
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = msgspec.json.encode({
    "data": [
        {
            "id": i,
            "title": f"Constant task {i}",
            "description": "The same bytes on every request: no I/O, no parsing, no auth.",
            "status": "in_progress",
            "task_group_id": 3,
            "assigned_to": 12,
            "position": i,
            "created_at": "2026-01-15T10:30:00Z",
            "updated_at": "2026-02-10T14:22:00Z",
        }
        for i in range(1, 5)
    ],
    "meta": {"current_page": 1, "last_page": 1, "per_page": 25, "total": 4},
})

_METHODS = ["GET", "POST", "PUT", "DELETE"]


async def constant(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


def make_app() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", constant, methods=_METHODS)])


def serve_app(factory: str, host: str, port: int, workers: int) -> None:
    """Serves the app that `factory` ("module:function") makes with `pathpro serve`'s own settings."""
    import uvicorn

    from service.__main__ import serve

    run = uvicorn.run

    def run_instead(app: Any, **options: Any) -> None:
        run(factory, **{**options, "factory": True})

    uvicorn.run = run_instead  # type: ignore[assignment]
    serve(host, port, workers)


def main(factory: str = "tests.bench.ceiling:make_app", argv: list[str] | None = None) -> None:
    """`--host`, `--port`, `--workers` as `pathpro serve` takes them; serves the app `factory` makes."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--host", default="127.0.0.1")
    args.add_argument("--port", type=int, required=True)
    args.add_argument("--workers", type=int, default=1)
    ns = args.parse_args(argv)
    serve_app(factory, ns.host, ns.port, ns.workers)

if __name__ == "__main__":
    main()
