"""The OpenAPI 3.1 document of the Developer API, served at /api/v1/openapi.json.

Body shapes come from the same msgspec Structs the handlers decode and encode, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.api.task_groups import TaskGroupList
from service.api.tasks import (
    MAX_PER_PAGE,
    PER_PAGE,
    STATUSES,
    One,
    OneDetail,
    TaskCreate,
    TaskCursorPage,
    TaskPage,
    TaskUpdate,
)
from service.errors import ErrorEnvelope
from service.payload import MAX_INT


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        out["headers"] = headers
    return out


_UNAUTHORIZED = _error("Missing, malformed, unknown or revoked token.", {
    "WWW-Authenticate": {"schema": {"type": "string"}},
})
_NOT_FOUND = _error("No such task in the token's project.")
_INVALID = _error("The fields named in error.fields are invalid.")
_BAD_JSON = _error("The body is not valid JSON.")
_MEDIA = _error("The body was not sent as application/json.")
_TOO_LARGE = _error("The body is larger than 1 MiB.")
_UNAVAILABLE = _error("A backing service is unavailable; retry after Retry-After seconds.",
                      {"Retry-After": {"schema": {"type": "integer"}}})


# On every answer to a request with a valid token (2xx, 4xx and 429 alike).
_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per 60 seconds with this token.",
    "X-RateLimit-Remaining": "Requests left in the sliding 60-second window, after this one.",
    "X-RateLimit-Reset": "Unix time (seconds, rounded up) when X-RateLimit-Remaining next goes up: when the "
                         "oldest request still in the window leaves it. Not a fixed window's reset.",
    "RateLimit-Policy": 'IETF draft form of the policy: `"token";q=<limit>;w=60`.',
    "RateLimit": 'IETF draft form of the state: `"token";r=<remaining>;t=<seconds until Remaining goes up>`.',
}
_HEADER_SCHEMAS = {
    name: {"description": text, "schema": {"type": "integer" if name.startswith("X-") else "string"}}
    for name, text in _LIMIT_HEADERS.items()
}
_HEADER_SCHEMAS["Retry-After"] = {
    "description": "Whole seconds (at least 1) until a request would be admitted.",
    "schema": {"type": "integer", "minimum": 1},
}
_LIMIT_REFS = {name: {"$ref": f"#/components/headers/{name}"} for name in _LIMIT_HEADERS}
_RATE_LIMITED = _error(
    "Over the token's limit (no request counted), or too many requests without a valid token from this "
    "address. Retry after Retry-After seconds; a refused request uses up nothing.",
    {**_LIMIT_REFS, "Retry-After": {"$ref": "#/components/headers/Retry-After"}})


def _with_limit_headers(responses: dict[str, Any]) -> dict[str, Any]:
    """The window's headers on every answer given after the token was admitted: not the 401 (no valid
    token, no window), nor a 413 refused from its Content-Length before the token is looked at."""
    out = {}
    for status, response in responses.items():
        if status not in ("401", "413", "429"):
            response = {**response, "headers": {**response.get("headers", {}), **_LIMIT_REFS}}
        out[status] = response
    out["429"] = _RATE_LIMITED
    return out


def _ok(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _int_param(name: str, where: str, description: str, minimum: int = 1, maximum: int = MAX_INT,
               required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": {"type": "integer", "minimum": minimum, "maximum": maximum}}


_TASK_ID = _int_param("task_id", "path", "The task's id.", required=True)
_JSON_BODY = "application/json"


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {_JSON_BODY: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def build_document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [TaskCreate, TaskUpdate, One, OneDetail, TaskPage, TaskCursorPage, TaskGroupList, ErrorEnvelope],
        ref_template="#/components/schemas/{name}",
    )
    components["Error"] = components.pop("ErrorEnvelope")
    components["Error"]["title"] = "Error"
    components["ErrorBody"]["properties"]["fields"] = {
        "type": "object", "additionalProperties": {"type": "string"},
        "description": "Each invalid field (or query parameter) and what is wrong with it.",
    }
    for name in ("TaskCreate", "TaskUpdate"):
        components[name]["additionalProperties"] = False
    write_errors = {"400": _BAD_JSON, "401": _UNAUTHORIZED, "413": _TOO_LARGE, "415": _MEDIA,
                    "422": _INVALID, "503": _UNAVAILABLE}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "PathPro Developer API",
            "version": "1.0.0",
            "description": "Manage the tasks of the project that the API token belongs to.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components,
            "headers": _HEADER_SCHEMAS,
        },
        "paths": {
            "/api/v1/tasks": {
                "get": {
                    "operationId": "listTasks",
                    "summary": "List the project's tasks, newest first.",
                    "parameters": [
                        _int_param("page", "query", "Page number, from 1.", maximum=10_000_000),
                        {**_int_param("per_page", "query", f"Tasks per page (default {PER_PAGE}).",
                                      maximum=MAX_PER_PAGE)},
                        _int_param("task_group_id", "query", "Only tasks in this task group."),
                        {"name": "status", "in": "query", "required": False,
                         "description": "Only tasks with this status.",
                         "schema": {"type": "string", "enum": list(STATUSES)}},
                        _int_param("assigned_to", "query", "Only tasks assigned to this user."),
                        {"name": "cursor", "in": "query", "required": False,
                         "description": "Instead of page: the page after this position, as given by "
                                        "meta.next_cursor or the Link header. Costs the same at any depth; "
                                        "paging by cursor neither skips nor repeats a task while tasks are "
                                        "added. Not together with page.",
                         "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            # Link is described here rather than under "headers": it is absent on the
                            # last page, and documented headers are read as always present
                            "description": "A page of tasks: TaskPage when asked by page (or neither), "
                                           "TaskCursorPage when asked by cursor. When more tasks follow, "
                                           'a Link header gives the next page by cursor: <url>; rel="next".',
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/TaskPage"},
                                {"$ref": "#/components/schemas/TaskCursorPage"},
                            ]}}},
                        },
                        "401": _UNAUTHORIZED, "422": _INVALID, "503": _UNAVAILABLE},
                },
                "post": {
                    "operationId": "createTask",
                    "summary": "Create a task; without a position it goes to the end of its group.",
                    "requestBody": _body("TaskCreate"),
                    "responses": {"201": _ok("One", "The created task."), **write_errors},
                },
            },
            "/api/v1/tasks/{task_id}": {
                "parameters": [_TASK_ID],
                "get": {
                    "operationId": "getTask",
                    "summary": "One task with its subtask and comment counts.",
                    "responses": {"200": _ok("OneDetail", "The task."), "401": _UNAUTHORIZED,
                                  "404": _NOT_FOUND, "503": _UNAVAILABLE},
                },
                "put": {
                    "operationId": "updateTask",
                    "summary": "Change the fields sent; the others keep their values.",
                    "requestBody": _body("TaskUpdate"),
                    "responses": {"200": _ok("One", "The updated task."), "404": _NOT_FOUND, **write_errors},
                },
                "delete": {
                    "operationId": "deleteTask",
                    "summary": "Delete a task with its subtasks and comments.",
                    "responses": {"204": {"description": "Deleted."}, "401": _UNAUTHORIZED,
                                  "404": _NOT_FOUND, "503": _UNAVAILABLE},
                },
            },
            "/api/v1/task_groups": {
                "get": {
                    "operationId": "listTaskGroups",
                    "summary": "The project's task groups, in board order.",
                    "responses": {"200": _ok("TaskGroupList", "The task groups."), "401": _UNAUTHORIZED,
                                  "503": _UNAVAILABLE},
                },
            },
        },
    }
    for path in document["paths"].values():
        for operation in path.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = _with_limit_headers(operation["responses"])
    return document


_DOCUMENT = msgspec.json.encode(build_document())


async def openapi_json(request: Request) -> Response:
    return Response(_DOCUMENT, media_type="application/json")
