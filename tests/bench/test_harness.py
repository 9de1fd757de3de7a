"""A smoke run of the benchmark harness: tiny projects, one-second runs, no timed assertions.

It proves that `make bench` can seed, serve, load and report on this machine: the table has a row for
every endpoint, the size comparison and the memory check, each with numbers in every measured cell.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.bench.run import END, START
from tests.conftest import ROOT


def test_the_harness_produces_a_well_formed_table(servers: tuple[str, str], tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# Benchmarks\n\nKept by hand.\n\n{START}\nold\n{END}\n\nAlso kept.\n")
    env = {**os.environ, "DATABASE_URL": servers[0], "REDIS_URL": servers[1]}
    run = subprocess.run([sys.executable, "-m", "tests.bench.run", "--smoke", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr

    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].split("|")[1:-1] == [
        " endpoint ", " workers ", " req/s ", " p50 ms ", " p99 ms ", " p99/p50 ", " ceiling req/s ",
        " ratio ", " target ", " met "]
    body = rows[1:]
    labels = [r.split("|")[1] for r in body]
    for endpoint in ["GET /api/v1/tasks ", "GET /api/v1/tasks?status=in_progress ", "GET /api/v1/tasks/{id} ",
                     "POST /api/v1/tasks ", "GET /api/v1/tasks, garbage token (401) "]:
        assert sum(label.startswith(" " + endpoint) for label in labels) == 1, endpoint
    floors = [r for r in body if "floor of GET /api/v1/tasks" in r]
    assert len(floors) == 1 and floors[0].rstrip().endswith("| reference | — |")
    measured = [r for r in body if "p50 at" not in r and "RSS" not in r and r not in floors]
    for row in measured:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert "unexpected" not in cells[0], row  # every response had the endpoint's status
        assert all(re.fullmatch(r"[\d,]+(\.\d+)?", c) for c in cells[2:8]), row
        assert float(cells[2].replace(",", "")) > 0 and cells[9] in ("yes", "**NO**")
    assert sum("p50 at 1,000 tasks / at 100" in r for r in body) == 2
    assert sum("RSS of a one-worker replica" in r for r in body) == 1

    written = out.read_text()
    assert written.startswith("# Benchmarks\n\nKept by hand.") and written.endswith(f"{END}\n\nAlso kept.\n")
    assert "old" not in written and "- Machine: " in written and "--smoke" in written
    assert all(row in written for row in rows)
