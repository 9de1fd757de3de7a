"""`make bench`: the service against the ceiling of its own stack, measured with wrk on loopback.

    python -m tests.bench.run            # the full run, written into tests/bench/BENCHMARKS.md
    python -m tests.bench.run --smoke    # a few seconds, to prove the harness works (the test suite runs it)

It makes a fresh database on the PostgreSQL server of DATABASE_URL (else TEST_DATABASE_URL, else an
embedded server), seeds projects with SQL (not the API), starts `pathpro serve` and the ceiling app
(tests/bench/ceiling.py) with one and with two workers, and loads each endpoint with wrk, interleaving
ceiling and service runs so that drift on a shared machine hits both alike. Every target of the
performance issue is a ratio measured within the one run. The database and the run's Redis keys are
removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis

from service import admin
from tests.databases import fresh_database

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = Path(__file__).resolve().parent / "BENCHMARKS.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
RATE_LIMIT = 2_000_000_000  # per minute: the limit is applied on every request but never reached
GROUPS = 10
MEMBERS = 5

# Targets of the performance issue, each a ratio within one run.
LIST_TARGET, GET_TARGET, UNAUTHORIZED_TARGET = 0.12, 0.15, 0.5
TAIL_TARGET = 5.0  # p99 / p50
GROWTH_TARGET = 1.5  # list p50 at the largest project / at the smallest
MEMORY_TARGET = 1.10  # RSS after the long run / after the short one
# tests/bench/floor.py: the list's EVALSHA and statement through the same drivers, and nothing else
FLOOR_LABEL = "floor of GET /api/v1/tasks: its two round trips alone"


@dataclass(frozen=True)
class Mode:
    duration: int  # seconds per wrk run
    rounds: int  # interleaved (ceiling, service) pairs per measurement
    connections: int
    workers: tuple[int, ...]
    main_size: int
    sizes: tuple[int, ...]  # projects compared for the list's growth with size
    memory: tuple[int, int]  # RSS is read after this many requests, then after this many


FULL = Mode(duration=8, rounds=2, connections=64, workers=(1, 2), main_size=100_000,
            sizes=(1_000, 1_000_000), memory=(100_000, 1_000_000))
SMOKE = Mode(duration=1, rounds=1, connections=8, workers=(1,), main_size=2_000,
             sizes=(100, 1_000), memory=(1_000, 4_000))


# ---------------------------------------------------------------- servers and data

@contextlib.contextmanager
def backing_servers(stack: contextlib.ExitStack) -> Iterator[tuple[str, str]]:
    pg = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    rd = os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    if not pg or not rd:
        from service import devservers

        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pathpro-bench-")))
        pg = pg or stack.enter_context(devservers.embedded_postgres(folder / "postgres"))
        rd = rd or stack.enter_context(devservers.embedded_redis(folder / "redis"))
    yield pg, rd


# Rows made in bulk. Group, status and assignee vary independently of each other; positions are dense
# per group; created_at is one second apart so the list's order is the insertion order.
_SEED_SQL = """
INSERT INTO tasks (project_id, task_group_id, title, description, status, assigned_to, position,
                   created_at, updated_at)
SELECT $1, ($2::bigint[])[1 + i % $5], 'Task ' || i,
       'Seeded task number ' || i || ', as long as a short real description tends to be.',
       (enum_range(NULL::task_status))[1 + (i / 7) % 4],
       CASE WHEN (i / 3) % 6 = 0 THEN NULL ELSE ($3::bigint[])[1 + (i / 3) % 5] END,
       1 + i / $5, ts, ts
  FROM generate_series(0, $4 - 1) AS i,
       LATERAL (SELECT now() - make_interval(secs => $4 - i) AS ts) AS t"""
# The rows above skip the per-row counter trigger (session_replication_role = replica), so the counters
# are computed once, in bulk, and checked below.
_COUNTS_SQL = """
INSERT INTO task_counts (project_id, task_group_id, status, assignee_key, n)
SELECT project_id, task_group_id, status, coalesce(assigned_to, 0), count(*)
  FROM tasks WHERE project_id = $1 GROUP BY 1, 2, 3, 4"""
_CHECK_SQL = """
SELECT (SELECT count(*) FROM tasks WHERE project_id = $1),
       (SELECT coalesce(sum(n), 0) FROM task_counts WHERE project_id = $1)"""


@dataclass
class Seeded:
    size: int
    slug: str
    group_ids: list[int]
    member_ids: list[int]
    first_id: int
    last_id: int
    token: str = ""


async def seed(database_url: str, size: int) -> Seeded:
    slug = f"bench-{size}"
    conn = await asyncpg.connect(database_url)
    try:
        project_id = await admin.create_project(conn, slug, f"Benchmark {size}", None)
        member_ids = []
        for i in range(MEMBERS):
            email = f"member{i}@{slug}.example.com"
            # members never sign in, so no password (and no slow password hash) is needed
            await conn.execute("INSERT INTO users (email, name) VALUES ($1, $2)", email, f"Member {i}")
            member_ids.append(await admin.add_member(conn, slug, email, "team_member"))
        group_ids = [await admin.create_group(conn, slug, f"Group {i}") for i in range(GROUPS)]
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(_SEED_SQL, project_id, group_ids, member_ids, size, GROUPS)
            await conn.execute(_COUNTS_SQL, project_id)
        rows, counted = await conn.fetchrow(_CHECK_SQL, project_id)
        if rows != size or counted != size:
            raise SystemExit(f"seeding {slug}: {rows} rows, counters say {counted}")
        await conn.execute("VACUUM ANALYZE tasks")
        await conn.execute("ANALYZE task_counts")
        first, last = await conn.fetchrow(
            "SELECT min(id), max(id) FROM tasks WHERE project_id = $1", project_id)
    finally:
        await conn.close()
    return Seeded(size, slug, group_ids, member_ids, first, last)


def cli(env: dict[str, str], *args: str) -> str:
    """Runs the operator CLI as an operator would, returning what it printed."""
    out = subprocess.run([_pathpro(), *args], env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _pathpro() -> str:
    return str(Path(sys.executable).with_name("pathpro"))


# ---------------------------------------------------------------- processes

@dataclass
class Server:
    name: str
    workers: int
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def rss_kib(self) -> int:
        """Resident memory of the serving process (with one worker uvicorn serves in this process)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(name: str, argv: list[str], workers: int, env: dict[str, str], logs: Path) -> Server:
    port = _free_port()
    log = logs / f"{name}-{workers}w-{port}.log"
    proc = subprocess.Popen([*argv, "--port", str(port), "--workers", str(workers)], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v1/openapi.json", timeout=2).status_code == 200:
                return Server(name, workers, url, proc, log)
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"{name} did not start:\n{log.read_text()}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (its workers), then wait."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------- wrk

@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    lua: str  # a wrk script: sets up the request(s); the same script loads the ceiling
    target: float | None = None  # minimum req/s ratio to the ceiling, with two workers
    expect: int = 200


def _lua_headers(token: str) -> str:
    return (f'wrk.headers["Authorization"] = "Bearer {token}"\n'
            'wrk.headers["Accept"] = "application/json"\n')


def endpoints(main: Seeded) -> list[Endpoint]:
    auth = _lua_headers(main.token)
    groups = "{" + ",".join(map(str, main.group_ids)) + "}"
    return [
        Endpoint("list", "GET /api/v1/tasks", auth + 'wrk.path = "/api/v1/tasks"\n', LIST_TARGET),
        Endpoint("list_filtered", "GET /api/v1/tasks?status=in_progress",
                 auth + 'wrk.path = "/api/v1/tasks?status=in_progress"\n'),
        Endpoint("get", "GET /api/v1/tasks/{id}", auth + (
            "request = function()\n"
            f"  return wrk.format(nil, '/api/v1/tasks/' .. math.random({main.first_id}, {main.last_id}))\n"
            "end\n"), GET_TARGET),
        Endpoint("create", "POST /api/v1/tasks", auth + (
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"local groups = {groups}\n"
            "request = function()\n"
            "  local body = '{\"title\": \"Benchmark task\", \"task_group_id\": ' .. "
            "groups[math.random(#groups)] .. ', \"status\": \"planned\"}'\n"
            "  return wrk.format(nil, '/api/v1/tasks', nil, body)\n"
            "end\n"), expect=201),
        Endpoint("unauthorized", "GET /api/v1/tasks, garbage token (401)",
                 'wrk.headers["Authorization"] = "Bearer pk_live_garbage"\n'
                 'wrk.path = "/api/v1/tasks"\n', UNAUTHORIZED_TARGET, expect=401),
    ]


@dataclass
class Sample:
    rps: float
    p50: float  # ms
    p99: float  # ms
    requests: int
    unexpected: int  # responses with another status than the endpoint's, and socket errors


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"unreadable latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


# Counts the statuses wrk saw, so a run that answered 429s or 500s cannot pass for a fast one.
_COUNT_LUA = """
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) statuses = {} end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\\n", k, v)) end
end
"""


def wrk(url: str, lua: str, *, seconds: int, connections: int, scripts: Path,
        threads: int = 2, expect: int = 200) -> Sample:
    script = scripts / f"{uuid.uuid4().hex}.lua"
    script.write_text(lua + _COUNT_LUA)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(script), url],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    statuses = {int(k): int(v) for k, v in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    unexpected = sum(n for s, n in statuses.items() if s != expect) + socket_errors
    return Sample(rps, p50, p99, requests, unexpected)


# ---------------------------------------------------------------- the run

@dataclass
class Row:
    label: str
    workers: int
    service: list[Sample] = field(default_factory=list)
    ceiling: list[Sample] = field(default_factory=list)
    target: float | None = None
    reference: bool = False  # the floor: shown beside the service, held to no target

    @staticmethod
    def _median(samples: list[Sample], attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples)

    def rps(self) -> float:
        return self._median(self.service, "rps")

    def p50(self) -> float:
        return self._median(self.service, "p50")

    def p99(self) -> float:
        return self._median(self.service, "p99")

    def ceiling_rps(self) -> float:
        return self._median(self.ceiling, "rps")

    def ratio(self) -> float:
        return self.rps() / self.ceiling_rps()

    def unexpected(self) -> int:
        return sum(s.unexpected for s in self.service)


def _fmt_verdict(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def table(rows: list[Row], growth: list[tuple[str, float, float]], memory: tuple[int, int, int, int],
          mode: Mode) -> str:
    lines = [
        "| endpoint | workers | req/s | p50 ms | p99 ms | p99/p50 | ceiling req/s | ratio | target | met |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        tail = r.p99() / r.p50()
        if r.reference:
            lines.append(
                f"| {r.label} | {r.workers} | {r.rps():,.0f} | {r.p50():.2f} | {r.p99():.2f} | {tail:.1f} | "
                f"{r.ceiling_rps():,.0f} | {r.ratio():.3f} | reference | — |")
            continue
        ok = tail <= TAIL_TARGET and r.unexpected() == 0
        target = ""
        if r.target is not None and r.workers == 2:
            target = f">= {r.target:.2f}x"
            ok = ok and r.ratio() >= r.target
        target = (target + ", " if target else "") + f"p99 <= {TAIL_TARGET:g}x p50"
        errors = f" ({r.unexpected()} unexpected)" if r.unexpected() else ""
        lines.append(
            f"| {r.label}{errors} | {r.workers} | {r.rps():,.0f} | {r.p50():.2f} | {r.p99():.2f} | "
            f"{tail:.1f} | {r.ceiling_rps():,.0f} | {r.ratio():.3f} | {target} | {_fmt_verdict(ok)} |"
        )
    for label, small, large in growth:
        ratio = large / small
        lines.append(
            f"| {label}: p50 at {mode.sizes[-1]:,} tasks / at {mode.sizes[0]:,} | 2 | | {large:.2f} / "
            f"{small:.2f} | | | | {ratio:.2f} | <= {GROWTH_TARGET:g}x | "
            f"{_fmt_verdict(ratio <= GROWTH_TARGET)} |"
        )
    short, long_, n_short, n_long = memory
    ratio = long_ / short
    lines.append(
        f"| RSS of a one-worker replica after {n_long:,} / after {n_short:,} requests | 1 | | "
        f"{long_ / 1024:.1f} MiB / {short / 1024:.1f} MiB | | | | {ratio:.3f} | <= {MEMORY_TARGET:.2f}x | "
        f"{_fmt_verdict(ratio <= MEMORY_TARGET)} |"
    )
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return f"{os.cpu_count()} CPUs ({cpu}), {mem_kib / 1024 / 1024:.1f} GiB memory, " \
           f"Python {platform.python_version()}, {platform.system()} {platform.release()}"


def write(path: Path, report: str) -> None:
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{report}\n{END}{tail}")


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(mode: Mode, out: Path, command: str) -> str:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make wrk` (apt-get install wrk) installs it")
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        pg_server, redis_url = stack.enter_context(backing_servers(stack))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pathpro-bench-")))
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        database_url = stack.enter_context(_sync(loop, fresh_database(pg_server, "pathpro_bench")))
        prefix = f"pathpro-bench-{uuid.uuid4().hex[:12]}:"
        stack.callback(_drop_keys, redis_url, prefix)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "PATHPRO_REDIS_PREFIX": prefix,
               # the 401 row measures refusing garbage, not the per-address limit on failed attempts
               "PATHPRO_AUTH_FAILURE_LIMIT": str(RATE_LIMIT)}

        projects: dict[int, Seeded] = {}
        for size in sorted({mode.main_size, *mode.sizes}):
            t0 = time.monotonic()
            projects[size] = loop.run_until_complete(seed(database_url, size))
            projects[size].token = cli(env, "token", "create", projects[size].slug, "--name", "bench",
                                       "--rate-limit", str(RATE_LIMIT))
            _log(f"seeded {size:,} tasks in {time.monotonic() - t0:.1f}s")
        main = projects[mode.main_size]

        servers: dict[tuple[str, int], Server] = {}
        for workers in mode.workers:
            for name, argv in (("ceiling", [sys.executable, "-m", "tests.bench.ceiling"]),
                               ("floor", [sys.executable, "-m", "tests.bench.floor"]),
                               ("service", [_pathpro(), "serve"])):
                server = start(name, argv, workers, env, work)
                stack.callback(stop, server.process)
                servers[(name, workers)] = server

        def load(server: Server, lua: str, expect: int, **kw: int) -> Sample:
            return wrk(server.url, lua, seconds=kw.pop("seconds", mode.duration),
                       connections=mode.connections, scripts=work, expect=expect, **kw)

        eps = endpoints(main)
        for server in servers.values():  # warm: connections, prepared statements, caches
            # the floor answers the list only
            for ep in eps if mode.rounds > 1 and server.name != "floor" else eps[:1]:
                load(server, ep.lua, ep.expect, seconds=1)

        rows = {(ep.key, w): Row(ep.label, w, target=ep.target) for ep in eps for w in mode.workers}
        floors = {w: Row(FLOOR_LABEL, w, reference=True) for w in mode.workers}
        for round_no in range(mode.rounds):
            for ep in eps:
                for w in mode.workers:
                    row = rows[(ep.key, w)]
                    row.ceiling.append(load(servers[("ceiling", w)], ep.lua, 200))
                    row.service.append(load(servers[("service", w)], ep.lua, ep.expect))
                    _log(f"round {round_no + 1}: {ep.key} {w}w {row.service[-1].rps:,.0f} req/s "
                         f"(ceiling {row.ceiling[-1].rps:,.0f})")
                    if ep.key == "list":
                        floors[w].ceiling.append(row.ceiling[-1])
                        floors[w].service.append(load(servers[("floor", w)], ep.lua, 200))
                        _log(f"round {round_no + 1}: floor {w}w {floors[w].service[-1].rps:,.0f} req/s")

        # The list's cost against the project's size: same server, page 1, plain and filtered.
        w = max(mode.workers)
        growth = []
        for ep in eps[:2]:
            p50s: dict[int, list[float]] = {s: [] for s in mode.sizes}
            for _ in range(mode.rounds):
                for size in mode.sizes:
                    lua = ep.lua.replace(main.token, projects[size].token)
                    p50s[size].append(load(servers[("service", w)], lua, 200).p50)
            growth.append((ep.label, statistics.median(p50s[mode.sizes[0]]),
                           statistics.median(p50s[mode.sizes[-1]])))
            _log(f"growth {ep.key}: {growth[-1]}")

        # Memory of one replica: a fresh one-worker server, RSS after the short and after the long run.
        replica = start("service-memory", [_pathpro(), "serve"], 1, env, work)
        stack.callback(stop, replica.process)
        mix = eps[2]  # GET /api/v1/tasks/{id}: auth, a statement, encoding, on random rows
        short, long_ = mode.memory
        # wrk cannot stop after a number of requests, so it runs in slices until enough were served.
        served = 0

        def serve_until(total: int) -> int:
            nonlocal served
            while served < total:
                rate = served / (time.monotonic() - began) if served else 1_000.0
                seconds = max(1, min(30, int((total - served) / rate) + 1))
                sample = load(replica, mix.lua, 200, seconds=seconds)
                if sample.unexpected:
                    raise SystemExit(f"memory run: {sample.unexpected} unexpected responses")
                served += sample.requests
            return replica.rss_kib()

        began = time.monotonic()
        rss_short = serve_until(short)
        short = served
        rss_long = serve_until(long_)
        long_ = served
        _log(f"RSS {rss_short} KiB after {short:,}, {rss_long} KiB after {long_:,}")

        result = table([*(rows[(ep.key, w)] for ep in eps for w in mode.workers), *floors.values()], growth,
                       (rss_short, rss_long, short, long_), mode)

    elapsed = int((dt.datetime.now(dt.UTC) - started).total_seconds())
    shared = (f"Load average when the run began: {load_before:.2f}"
              + (" (other work was using the CPU: the box was shared)" if load_before > 0.5 else "") + ".")
    report = "\n".join([
        f"Run of {started:%Y-%m-%d %H:%M} UTC, {elapsed // 60} min {elapsed % 60} s long.",
        "",
        f"- Machine: {machine()}.",
        f"- Command: `{command}`.",
        f"- wrk on loopback, {mode.connections} connections, 2 threads, {mode.duration}s per run, "
        f"{mode.rounds} interleaved ceiling/service round(s), medians shown; the main project has "
        f"{mode.main_size:,} tasks, {GROUPS} groups, {MEMBERS} members.",
        f"- {shared}",
        "",
        result,
    ])
    print(result)
    write(out, report)
    return result


def _drop_keys(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        for key in r.scan_iter(match=f"{prefix}*", count=1000):
            r.delete(key)
    finally:
        r.close()


@contextlib.contextmanager
def _sync(loop: asyncio.AbstractEventLoop, manager):  # type: ignore[no-untyped-def]
    value = loop.run_until_complete(manager.__aenter__())
    try:
        yield value
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="a few seconds, tiny projects, one worker")
    p.add_argument("--duration", type=int, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, help="interleaved ceiling/service pairs per measurement")
    p.add_argument("--memory-requests", type=int, nargs=2, metavar=("SHORT", "LONG"))
    p.add_argument("--out", type=Path, default=BENCHMARKS, help="the Markdown file to write the table into")
    args = p.parse_args(argv)
    mode = SMOKE if args.smoke else FULL
    if args.duration:
        mode = Mode(**{**mode.__dict__, "duration": args.duration})
    if args.rounds:
        mode = Mode(**{**mode.__dict__, "rounds": args.rounds})
    if args.memory_requests:
        mode = Mode(**{**mode.__dict__, "memory": tuple(args.memory_requests)})
    command = "make bench" if argv is None and not sys.argv[1:] else \
        "python -m tests.bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    run(mode, args.out, command)


if __name__ == "__main__":
    main()
