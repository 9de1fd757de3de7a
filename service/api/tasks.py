"""The Tasks endpoints: list, read, create, update and delete the tasks of the token's project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

import asyncpg
import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import Request
from starlette.responses import Response

from service.api import cursor
from service.errors import NotFound, ServiceUnavailable, ValidationFailed
from service.payload import MAX_INT, build, json_object, query_int

Status = Literal["backlog", "planned", "in_progress", "completed"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
Id = Annotated[int, Meta(ge=1, le=MAX_INT)]
Title = Annotated[str, Meta(min_length=1, max_length=255)]
Description = Annotated[str, Meta(max_length=65_535)]
Position = Annotated[int, Meta(ge=1, le=2**31 - 1)]

READ_ONLY = frozenset({"id", "created_at", "updated_at", "subtasks_count", "comments_count", "project_id"})
NON_BLANK = frozenset({"title"})
PER_PAGE = 25
MAX_PER_PAGE = 100


class TaskCreate(msgspec.Struct):
    title: Title
    task_group_id: Id
    description: Description | None | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    assigned_to: Id | None | UnsetType = UNSET
    position: Position | UnsetType = UNSET


class TaskUpdate(msgspec.Struct):
    title: Title | UnsetType = UNSET
    task_group_id: Id | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    assigned_to: Id | None | UnsetType = UNSET
    position: Position | UnsetType = UNSET


class Task(msgspec.Struct):
    id: int
    title: str
    description: str | None
    status: Status
    task_group_id: int
    assigned_to: int | None
    position: int
    created_at: str
    updated_at: str


class TaskDetail(msgspec.Struct):
    id: int
    title: str
    description: str | None
    status: Status
    task_group_id: int
    assigned_to: int | None
    position: int
    subtasks_count: int
    comments_count: int
    created_at: str
    updated_at: str


class PageMeta(msgspec.Struct):
    current_page: int
    last_page: int
    per_page: int
    total: int


class TaskPage(msgspec.Struct):
    data: list[Task]
    meta: PageMeta


class CursorMeta(msgspec.Struct):
    per_page: int
    total: int
    next_cursor: str | None


class TaskCursorPage(msgspec.Struct):
    """A page asked for with `cursor`: no page numbers, the cursor of the next page instead."""

    data: list[Task]
    meta: CursorMeta


class One(msgspec.Struct):
    data: Task


class OneDetail(msgspec.Struct):
    data: TaskDetail


_encoder = msgspec.json.Encoder()


def _json(body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(body), status_code=status, headers=headers, media_type="application/json")


# Timestamps leave as the doc shows them: UTC, seconds precision, with Z.
_TS = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
_COLUMNS = (
    "t.id, t.title, t.description, t.status::text, t.task_group_id, t.assigned_to, t.position, "
    + _TS.format("t.created_at") + ", " + _TS.format("t.updated_at")
)

# The list is built from these fixed fragments only, so each combination of filters is one prepared
# statement whose plan uses the matching index (a catch-all `$1 IS NULL OR ...` would not).
_TASK_FILTERS = {
    "task_group_id": "t.task_group_id = ${}",
    "status": "t.status = ${}::task_status",
    "assigned_to": "t.assigned_to = ${}",
}
_COUNT_FILTERS = {
    "task_group_id": "c.task_group_id = ${}",
    "status": "c.status = ${}::task_status",
    "assigned_to": "c.assignee_key = ${}",
}
# After a cursor: the tasks strictly older in the list's order, a range scan of the same index.
_AFTER_CURSOR = " AND (t.created_at, t.id) < (${}, ${})"
# The page and its exact total in one round trip; the total sums the counters kept by a trigger.
# The page has one task more than asked for when there is a next page.
_LIST_SQL = """
SELECT c.total, p.*
  FROM (SELECT coalesce(sum(c.n), 0)::bigint AS total FROM task_counts c
         WHERE c.project_id = $1{count_where}) c
  LEFT JOIN LATERAL (
        SELECT {columns}, t.created_at AS sort_at
          FROM tasks t
         WHERE t.project_id = $1{task_where}
         ORDER BY t.created_at DESC, t.id DESC
         LIMIT $2 OFFSET $3) p ON true
 ORDER BY p.sort_at DESC, p.id DESC"""

_GET_SQL = f"""
SELECT t.id, t.title, t.description, t.status::text, t.task_group_id, t.assigned_to, t.position,
       (SELECT count(*) FROM subtasks s WHERE s.task_id = t.id),
       (SELECT count(*) FROM comments m WHERE m.task_id = t.id),
       {_TS.format("t.created_at")}, {_TS.format("t.updated_at")}
  FROM tasks t WHERE t.id = $1 AND t.project_id = $2"""

_LOCK_GROUPS_SQL = """
SELECT id FROM task_groups WHERE project_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR UPDATE"""
_GROUP_SIZE_SQL = "SELECT coalesce(max(position), 0) FROM tasks WHERE task_group_id = $1"
_OPEN_GAP_SQL = "UPDATE tasks SET position = position + 1 WHERE task_group_id = $1 AND position >= $2"
_CLOSE_GAP_SQL = "UPDATE tasks SET position = position - 1 WHERE task_group_id = $1 AND position > $2"
_SHIFT_SQL = """
UPDATE tasks SET position = position + $4 WHERE task_group_id = $1 AND position BETWEEN $2 AND $3"""
_PLACE_SQL = "SELECT task_group_id, position FROM tasks WHERE id = $1 AND project_id = $2"

_INSERT_SQL = f"""
INSERT INTO tasks AS t (project_id, task_group_id, title, description, status, assigned_to, position)
VALUES ($1, $2, $3, $4, coalesce($5::task_status, 'backlog'), $6, $7)
RETURNING {_COLUMNS}"""

# One fixed statement for every partial update: each field comes with a flag saying whether it was sent,
# so "not sent" and "sent as null" stay different.
_UPDATE_SQL = f"""
UPDATE tasks AS t SET
    title         = CASE WHEN $3 THEN $4 ELSE t.title END,
    description   = CASE WHEN $5 THEN $6 ELSE t.description END,
    status        = CASE WHEN $7 THEN $8::task_status ELSE t.status END,
    assigned_to   = CASE WHEN $9 THEN $10 ELSE t.assigned_to END,
    task_group_id = coalesce($11, t.task_group_id),
    position      = coalesce($12, t.position),
    updated_at    = now()
 WHERE t.id = $1 AND t.project_id = $2
RETURNING {_COLUMNS}"""

_DELETE_SQL = """
DELETE FROM tasks WHERE id = $1 AND project_id = $2 AND task_group_id = $3 RETURNING position"""

_RETRIES = 5
T = TypeVar("T")


def _task_id(request: Request) -> int:
    raw: str = request.path_params["task_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= MAX_INT:
        raise NotFound("No task with this id in the project.")
    return int(raw)


def _project(request: Request) -> int:
    project_id: int = request.state.token.project_id
    return project_id


def _unset_to_none(value: Any) -> Any:
    return None if value is UNSET else value


async def _in_group_transaction(pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` in a transaction, again when it lost a race for a task's group.

    Position changes lock their task groups first (in id order), then rows of tasks. A task's group is
    read before its lock is taken, so a concurrent move can make that read stale: `work` raises
    _GroupMoved and the whole transaction starts over.
    """
    for _ in range(_RETRIES):
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    return await work(conn)
            except (_GroupMoved, asyncpg.DeadlockDetectedError):
                continue
    raise ServiceUnavailable("The task is being changed by another request. Retry shortly.",
                             headers={"Retry-After": "1"})


class _GroupMoved(Exception):
    pass


async def _lock_groups(conn: asyncpg.Connection, project_id: int, *group_ids: int) -> set[int]:
    rows = await conn.fetch(_LOCK_GROUPS_SQL, project_id, sorted(set(group_ids)))
    return {r["id"] for r in rows}


async def list_tasks(request: Request) -> Response:
    params = request.query_params
    errors: dict[str, str] = {}
    page = query_int(params, "page", errors, default=1, hi=10_000_000) or 1
    per_page = query_int(params, "per_page", errors, default=PER_PAGE, hi=MAX_PER_PAGE) or PER_PAGE
    filters: dict[str, Any] = {}
    for name in ("task_group_id", "assigned_to"):
        value = query_int(params, name, errors)
        if value is not None:
            filters[name] = value
    status = params.get("status")
    if status is not None:
        if status in STATUSES:
            filters["status"] = status
        else:
            errors["status"] = f"Must be one of: {', '.join(STATUSES)}."
    raw_cursor = params.get("cursor")
    after = None
    if raw_cursor is not None:
        after = cursor.decode(raw_cursor)
        if after is None:
            errors["cursor"] = "Not a cursor from this API: use meta.next_cursor or the Link header as given."
        elif "page" in params:
            errors["cursor"] = "Send either cursor or page, not both."
    if errors:
        raise ValidationFailed(fields=errors)

    offset = 0 if after else (page - 1) * per_page
    args: list[Any] = [_project(request), per_page + 1, offset]
    task_where, count_where = "", ""
    for name, value in filters.items():
        args.append(value)
        task_where += " AND " + _TASK_FILTERS[name].format(len(args))
        count_where += " AND " + _COUNT_FILTERS[name].format(len(args))
    if after:
        args.extend(after)
        task_where += _AFTER_CURSOR.format(len(args) - 1, len(args))
    sql = _LIST_SQL.format(columns=_COLUMNS, task_where=task_where, count_where=count_where)
    rows = await request.app.state.pool.fetch(sql, *args)

    total = rows[0]["total"]
    data = [Task(*row[1:10]) for row in rows[:per_page] if row["id"] is not None]
    # the row past the page only says that there is more: the cursor names the page's last task
    more = len(rows) > per_page
    next_cursor = cursor.encode(rows[per_page - 1]["sort_at"], data[-1].id) if more else None
    headers = {"Link": _next_link(filters, per_page, next_cursor)} if next_cursor else None
    if after is not None:
        return _json(TaskCursorPage(data, CursorMeta(per_page, total, next_cursor)), headers=headers)
    last_page = max(1, -(-total // per_page))
    return _json(TaskPage(data, PageMeta(page, last_page, per_page, total)), headers=headers)


def _next_link(filters: dict[str, Any], per_page: int, next_cursor: str) -> str:
    query = urlencode({**filters, "per_page": per_page, "cursor": next_cursor})
    return f'</api/v1/tasks?{query}>; rel="next"'


async def get_task(request: Request) -> Response:
    row = await request.app.state.pool.fetchrow(_GET_SQL, _task_id(request), _project(request))
    if row is None:
        raise NotFound("No task with this id in the project.")
    return _json(OneDetail(TaskDetail(*row)))


async def create_task(request: Request) -> Response:
    body = build(TaskCreate, await json_object(request), read_only=READ_ONLY, non_blank=NON_BLANK)
    project_id = _project(request)

    async def work(conn: asyncpg.Connection) -> asyncpg.Record:
        if not await _lock_groups(conn, project_id, body.task_group_id):
            raise ValidationFailed(fields={"task_group_id": "No task group with this id in the project."})
        size = await conn.fetchval(_GROUP_SIZE_SQL, body.task_group_id)
        position = min(_unset_to_none(body.position) or size + 1, size + 1)
        if position <= size:
            await conn.execute(_OPEN_GAP_SQL, body.task_group_id, position)
        return await conn.fetchrow(
            _INSERT_SQL, project_id, body.task_group_id, body.title, _unset_to_none(body.description),
            _unset_to_none(body.status), _unset_to_none(body.assigned_to), position,
        )

    row = await _in_group_transaction(request.app.state.pool, work)
    return _json(One(Task(*row)), status=201)


async def update_task(request: Request) -> Response:
    task_id = _task_id(request)
    body = build(TaskUpdate, await json_object(request), read_only=READ_ONLY, non_blank=NON_BLANK)
    project_id = _project(request)
    moves = body.task_group_id is not UNSET or body.position is not UNSET

    def field_args(group_id: int | None, position: int | None) -> list[Any]:
        return [
            task_id, project_id,
            body.title is not UNSET, _unset_to_none(body.title),
            body.description is not UNSET, _unset_to_none(body.description),
            body.status is not UNSET, _unset_to_none(body.status),
            body.assigned_to is not UNSET, _unset_to_none(body.assigned_to),
            group_id, position,
        ]

    async def work(conn: asyncpg.Connection) -> asyncpg.Record | None:
        if not moves:
            return await conn.fetchrow(_UPDATE_SQL, *field_args(None, None))
        place = await conn.fetchrow(_PLACE_SQL, task_id, project_id)
        if place is None:
            return None
        old_group = place["task_group_id"]
        new_group = old_group if body.task_group_id is UNSET else body.task_group_id
        if new_group not in await _lock_groups(conn, project_id, old_group, new_group):
            raise ValidationFailed(fields={"task_group_id": "No task group with this id in the project."})
        # with the group locked, the task's place is settled; positions may have shifted while we waited
        place = await conn.fetchrow(_PLACE_SQL, task_id, project_id)
        if place is None or place["task_group_id"] != old_group:
            raise _GroupMoved
        old_position = place["position"]
        wanted = _unset_to_none(body.position)
        if new_group == old_group:
            size = await conn.fetchval(_GROUP_SIZE_SQL, old_group)
            position = min(wanted or old_position, size)
            if position > old_position:
                await conn.execute(_SHIFT_SQL, old_group, old_position + 1, position, -1)
            elif position < old_position:
                await conn.execute(_SHIFT_SQL, old_group, position, old_position - 1, 1)
        else:
            await conn.execute(_CLOSE_GAP_SQL, old_group, old_position)
            size = await conn.fetchval(_GROUP_SIZE_SQL, new_group)
            position = min(wanted or size + 1, size + 1)
            await conn.execute(_OPEN_GAP_SQL, new_group, position)
        return await conn.fetchrow(_UPDATE_SQL, *field_args(new_group, position))

    row = await _in_group_transaction(request.app.state.pool, work)
    if row is None:
        raise NotFound("No task with this id in the project.")
    return _json(One(Task(*row)))


async def delete_task(request: Request) -> Response:
    task_id = _task_id(request)
    project_id = _project(request)

    async def work(conn: asyncpg.Connection) -> bool:
        place = await conn.fetchrow(_PLACE_SQL, task_id, project_id)
        if place is None:
            return False
        group_id = place["task_group_id"]
        await _lock_groups(conn, project_id, group_id)
        position = await conn.fetchval(_DELETE_SQL, task_id, project_id, group_id)
        if position is None:
            raise _GroupMoved  # moved to another group (or deleted) before the lock was ours
        await conn.execute(_CLOSE_GAP_SQL, group_id, position)
        return True

    if not await _in_group_transaction(request.app.state.pool, work):
        raise NotFound("No task with this id in the project.")
    return Response(status_code=204)
