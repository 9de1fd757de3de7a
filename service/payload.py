"""Reading request bodies and query strings into typed values, naming every field that is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from service.errors import BadRequest, UnsupportedMediaType, ValidationFailed

S = TypeVar("S", bound=msgspec.Struct)

MAX_INT = 2**63 - 1
_decoder = msgspec.json.Decoder()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 without a JSON content type, 400 when unreadable, 422 when not an object."""
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType()
    body = await request.body()
    try:
        data = _decoder.decode(body)
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object.", fields={"body": "Expected an object."})
    return data


def _text_problem(value: str, non_blank: bool) -> str | None:
    if "\x00" in value:
        return "Must not contain NUL characters."
    if non_blank and not value.strip():
        return "Must not be blank."
    return None


def build(
    cls: type[S],
    data: Mapping[str, Any],
    *,
    read_only: frozenset[str] = frozenset(),
    non_blank: frozenset[str] = frozenset(),
) -> S:
    """Validate each field of `data` against `cls` on its own, so one 422 names every bad field.

    Fields the struct defaults to msgspec.UNSET may be left out; the result keeps them UNSET,
    which is how a partial update tells "not sent" from "sent as null".
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key, raw in data.items():
        info = fields.get(key)
        if info is None:
            errors[key] = "This field is read-only." if key in read_only else "Unknown field."
            continue
        if isinstance(raw, float) and raw.is_integer():
            # JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees), and a string or
            # enum field still refuses it below
            raw = int(raw)
        try:
            value = msgspec.convert(raw, type=info.type)
        except msgspec.ValidationError as exc:
            errors[key] = f"{exc}."
            continue
        if isinstance(value, str) and (problem := _text_problem(value, key in non_blank)):
            errors[key] = problem
            continue
        values[info.name] = value
    for key, info in fields.items():
        if info.required and key not in data:
            errors[key] = "This field is required."
    if errors:
        raise ValidationFailed(fields=errors)
    return cls(**values)


def query_int(params: Mapping[str, str], name: str, errors: dict[str, str], *,
              default: int | None = None, lo: int = 1, hi: int = MAX_INT) -> int | None:
    """An integer query parameter within [lo, hi]; a problem goes into `errors` under its name."""
    raw = params.get(name)
    if raw is None:
        return default
    # int() alone would take " 7", "+7", "7_000" and thousands of digits
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not lo <= int(raw) <= hi:
        errors[name] = f"Must be an integer from {lo} to {hi}."
        return default
    return int(raw)
