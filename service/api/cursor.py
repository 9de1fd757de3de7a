"""Opaque cursors for the task list: a position in its order (created_at, id), newest first.

A cursor names the last task a client has seen; the next page is the tasks strictly after it in the
list's order. Tasks created meanwhile are newer, so they land before the cursor: paging neither skips
nor repeats a task that existed when it began, and each page costs one index range scan at any depth.
"""

from __future__ import annotations

import base64
import re
import struct
from datetime import UTC, datetime, timedelta

from service.payload import MAX_INT

_VERSION = 1
_LAYOUT = struct.Struct(">Bqq")  # version, created_at in microseconds since the epoch, task id
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SHAPE = re.compile(r"[A-Za-z0-9_-]{23}")  # 17 bytes in unpadded base64url


def encode(created_at: datetime, task_id: int) -> str:
    raw = _LAYOUT.pack(_VERSION, (created_at - _EPOCH) // _MICROSECOND, task_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(cursor: str) -> tuple[datetime, int] | None:
    """The position a cursor names, or None when it is not one this API made."""
    if not _SHAPE.fullmatch(cursor):
        return None
    raw = base64.urlsafe_b64decode(cursor + "=")
    version, micros, task_id = _LAYOUT.unpack(raw)
    if version != _VERSION or not 1 <= task_id <= MAX_INT:
        return None
    try:
        created_at = _EPOCH + micros * _MICROSECOND
    except OverflowError:
        return None
    # one position, one spelling: stray bits in the last character would make a second one
    if encode(created_at, task_id) != cursor:
        return None
    return created_at, task_id
