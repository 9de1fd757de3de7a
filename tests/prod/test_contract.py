"""schemathesis against the served OpenAPI document: no 500s, every response as documented.

`make test` runs a small, bounded run; `make fuzz` runs the same test with PATHPRO_FUZZ_EXAMPLES and
PATHPRO_FUZZ_SECONDS raised.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.conftest import make_project

ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("PATHPRO_FUZZ_EXAMPLES", "8"))
SECONDS = int(os.environ.get("PATHPRO_FUZZ_SECONDS", "10"))


async def test_schemathesis_finds_no_server_error_and_no_contract_drift(
    run_server, pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    # a limit the run cannot reach: the fuzzer tests the contract, not the rate limit
    project = await make_project(pool, groups=2, rate_limit=1_000_000)
    server = run_server()
    result = await asyncio.to_thread(
        subprocess.run,
        [str(ST), "--config-file", str(CONFIG), "run", f"{server.url}/api/v1/openapi.json",
         "-H", f"Authorization: Bearer {project.token}",
         "--checks", "all",
         "--phases", "examples,coverage,fuzzing,stateful",
         "--mode", "all",
         "--max-examples", str(EXAMPLES),
         "--max-time", str(SECONDS),
         "--seed", os.environ.get("PATHPRO_FUZZ_SEED", "20261203"),
         "--workers", "1",
         "--request-timeout", "10",
         "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=SECONDS + 120,
        cwd=tmp_path,  # schemathesis keeps a cache folder in its working directory
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    log = server.log.read_text()
    assert "Traceback" not in log, log[-5000:]
