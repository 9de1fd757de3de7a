"""Reading what the pages post: text fields, and the new token's name and mode."""

from __future__ import annotations

from starlette.datastructures import FormData

from service.payload import MAX_INT

MODES = ("live", "test")
NAME_MAX = 255


def text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value if isinstance(value, str) else ""


def token_problems(name: str, mode: str) -> dict[str, str]:
    """What is wrong with a new token's (stripped) name and mode, by field; empty when both are fine."""
    problems = {}
    if not name:
        problems["name"] = "Give the token a name."
    elif len(name) > NAME_MAX:
        problems["name"] = f"Use at most {NAME_MAX} characters."
    elif "\x00" in name:
        problems["name"] = "Must not contain NUL characters."
    if mode not in MODES:
        problems["mode"] = "Choose live or test."
    return problems


def token_id(raw: str) -> int | None:
    """A token id from a URL: a positive 64-bit integer, else None (which the caller answers with 404)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= MAX_INT:
        return None
    return int(raw)
