"""The task groups of the token's project, so integrations can find task_group_id values."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response


class TaskGroup(msgspec.Struct):
    id: int
    name: str
    position: int


class TaskGroupList(msgspec.Struct):
    data: list[TaskGroup]


_LIST_SQL = "SELECT id, name, position FROM task_groups WHERE project_id = $1 ORDER BY position, id"
_encoder = msgspec.json.Encoder()


async def list_task_groups(request: Request) -> Response:
    rows = await request.app.state.pool.fetch(_LIST_SQL, request.state.token.project_id)
    body = TaskGroupList([TaskGroup(*row) for row in rows])
    return Response(_encoder.encode(body), media_type="application/json")
