"""How the suite finds its PostgreSQL and Redis: probing for Docker must not itself fail the run."""

from __future__ import annotations

import gc
import warnings

from tests.conftest import _docker_answers


def test_probing_for_docker_leaves_no_socket_open() -> None:
    # with warnings as errors, a socket left to the garbage collector fails the whole session at exit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _docker_answers()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
