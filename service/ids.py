"""Ids unique across processes and replicas without a system call per id.

A request id and a rate-limit window member are made for every request; uuid4 reads the kernel's random
source each time. These are a random prefix drawn once per process (64 bits: two replicas drawing the
same one is a 1-in-10^19 event) and a counter. A window member must never repeat, or the window would
take it for a retried call it had already counted, so a forked child draws a prefix of its own.
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(8)
    _counter = itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def unique_id() -> str:
    """32 hex characters, like uuid4().hex, never the same twice in any process of any replica."""
    return f"{_prefix}{next(_counter):016x}"
