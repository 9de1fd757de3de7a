"""service.ids: unique within a process, across processes and across a fork."""

from __future__ import annotations

import os
import subprocess
import sys

from service import ids
from service.middleware import _SANE_REQUEST_ID
from tests.conftest import ROOT


def test_ids_never_repeat_in_a_process_and_are_sane_request_ids() -> None:
    made = [ids.unique_id() for _ in range(100_000)]
    assert len(set(made)) == len(made)
    assert all(_SANE_REQUEST_ID.fullmatch(i) and len(i) == 32 for i in made[:: 997])


def test_a_forked_child_and_another_process_draw_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a few ids to the parent, then out without running pytest's exit code
        os.close(read)
        os.write(write, " ".join(ids.unique_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    other = subprocess.run([sys.executable, "-c", "from service import ids; print(ids.unique_id())"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    mine = [ids.unique_id() for _ in range(3)]
    prefixes = {i[:16] for i in [*child, *other, *mine]}
    assert len(child) == 3 and len(prefixes) == 3
