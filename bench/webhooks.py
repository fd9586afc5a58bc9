"""Signed, gzip'd iCIMS webhooks into durable storage: deliveries/s and time to 200, through the
real gateway and the real integrations API, beside a bare FastAPI endpoint doing one INSERT.

- ours: `wrk` → gateway (`gateway api`, webhook pass-through: raw body, headers, Host) →
  integrations (`integrations api`: bounded gunzip, signature check, parse, duplicate check
  under an advisory lock, INSERT into `webhook_events` + the outbox event, commit) → 200.
  Every delivery is a different status change (its own `systemId`), signed with the secret the
  receiver has and dated just before its run, so each is verified and none is a duplicate:
  the path a genuine delivery takes. The run checks that afterwards in the database.
- bare: `wrk` → one uvicorn process (one worker, same loop and HTTP parser) with a FastAPI
  endpoint that reads the body and does one asyncpg INSERT of it (autocommit) → 200. The same
  requests, bytes for bytes.

Load: `wrk` (Debian's package; C, about 0.1 core at these rates) with a Lua script that sends
pre-built raw requests from a file, one thread, closed loop at each `--connections` level.
Each level reports deliveries/s and the latency percentiles of wrk (time to the 200); the
"sustained" figure is the highest rate among the levels whose p99 ≤ 100 ms, and "saturation"
the highest rate at any level. The ratio is ours / bare at each. CPU per delivery by process
(from /proc) shows where the time goes; `--profile DIR` runs the gateway and integrations
under cProfile for one level and prints their top functions.

    uv run python bench/run.py --only webhooks [--quick] [--seconds N] [--connections 2,4,16,64]
    uv run python bench/webhooks.py --quick --profile /tmp/hooks-prof
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from scheduler_sandbox.icims_signing import sign_headers
from servicekit.db import create_database_if_missing, drop_database
from servicekit.migrations import migrate
from sqlalchemy.engine import make_url

NAME = "webhooks"
BIN = Path(sys.executable).parent
PATH = "/api/webhooks/icims"
HOST = "hooks.bench.example"  # signed, and passed through by the gateway untouched
SECRET = "bench-webhook-secret-0123456789abcdef-not-for-production"
AIM_RATE = 1000.0
AIM_P99_MS = 100.0
AIM_RATIO = 0.5
BARE_TABLE = "bare_webhooks"
# Where each target's requests go in: ours through the gateway; `direct` (integrations without
# the gateway, to tell their costs apart) and bare straight to their process.
ENTRY = {"ours": "gateway", "direct": "integrations", "bare": "bare"}

# -- the bare endpoint (its own process: `webhooks.py --bare-server`) ----------------------------


def create_bare_app() -> FastAPI:
    dsn = os.environ["BENCH_BARE_DSN"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post(PATH)
    async def receive(request: Request) -> JSONResponse:
        raw = await request.body()
        webhook_id = uuid.uuid4()
        await request.app.state.pool.execute(
            f"INSERT INTO {BARE_TABLE} (id, raw_body, received_at) VALUES ($1, $2, now())",
            webhook_id,
            raw,
        )
        return JSONResponse({"id": str(webhook_id)})

    return app


def serve_bare(port: int) -> int:
    import uvicorn

    uvicorn.run(
        create_bare_app,
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return 0


# -- requests ------------------------------------------------------------------------------------


def _request(system_id: str) -> bytes:
    body = json.dumps(
        {
            "customerId": "1234",
            "eventType": "WorkFlowStatusChangeEvent",
            "systemId": system_id,
            "newStatus": {"id": "C51218"},
            "oldStatus": {"id": "C100"},
            "jobId": "88",
            "personId": "77",
            "userId": "U1",
            "links": [
                {
                    "rel": "applicantWorkflow",
                    "title": "Applicant Workflow",
                    "url": f"https://api.icims.com/customers/1234/applicantworkflows/{system_id}",
                }
            ],
        }
    ).encode()
    raw = gzip.compress(body, compresslevel=6)
    headers = sign_headers(
        secret=SECRET,
        method="POST",
        host=HOST,
        path=PATH,
        query="",
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(raw))
    head = f"POST {PATH} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + raw


def write_requests(path: Path, count: int) -> None:
    """`count` different signed requests, each framed as 8 ASCII digits of length + bytes.
    Dated now: they must be sent within 5 minutes (the verifier's window)."""
    run = uuid.uuid4().hex[:8]
    with path.open("wb") as out:
        for i in range(count):
            request = _request(f"B{run}{i:07d}")
            out.write(b"%08d" % len(request) + request)


LUA = r"""
-- Globals, not locals: done() reads `wrapped` from each thread's state with thread:get().
reqs, n, i, wrapped = {}, 0, 0, 0
local threads = {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local len = tonumber(data:sub(pos, pos + 7))
    n = n + 1
    reqs[n] = data:sub(pos + 8, pos + 7 + len)
    pos = pos + 8 + len
  end
end

function request()
  i = i + 1
  if i > n then i, wrapped = 1, wrapped + 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do io.write(string.format("pool-wrapped %d\n", t:get("wrapped"))) end
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("pct %s %.3f\n", p, latency:percentile(p) / 1000))
  end
end
"""

# -- CPU by process, from /proc (as bench/outbox_pipeline.py measures it) -----------------------

_TICK = os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _machine_busy() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


def _proc_cpu(stat: Path) -> tuple[str, float] | None:
    try:
        raw = stat.read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return raw[raw.find("(") + 1 : raw.rfind(")")], (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class CpuSnapshot:
    """CPU seconds so far, by pid with its group: ours by role; PostgreSQL backends of the
    benchmark's database (`postgres`) and the rest of PostgreSQL (`pg other`); everyone else
    under their command name (`strangers`)."""

    wall: float
    busy: int
    pids: dict[int, tuple[str, float]]  # pid → (group, seconds)
    strangers: dict[int, tuple[str, float]]

    @classmethod
    def take(cls, ours: dict[int, str], database: str) -> CpuSnapshot:
        pids: dict[int, tuple[str, float]] = {}
        strangers: dict[int, tuple[str, float]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            pid = int(stat.parent.name)
            found = _proc_cpu(stat)
            if found is None:
                continue
            comm, seconds = found
            if pid in ours:
                pids[pid] = (ours[pid], seconds)
            elif comm == "postgres":
                try:
                    title = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    title = ""
                pids[pid] = ("postgres" if f" {database} " in title else "pg other", seconds)
            else:
                strangers[pid] = (comm, seconds)
        return cls(time.monotonic(), _machine_busy(), pids, strangers)


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    """Cores used on average, by group; `others`: busy time no group explains. A process that
    ended in between (a closed PostgreSQL connection) loses its last part: never negative."""
    span = b.wall - a.wall
    out: dict[str, float] = defaultdict(float)
    for pid, (group, seconds) in b.pids.items():
        out[group] += (seconds - a.pids.get(pid, (group, 0.0))[1]) / span
    busy = (b.busy - a.busy) / _TICK / span
    out["others"] = max(0.0, busy - sum(out.values()))
    out["machine"] = busy
    return dict(out)


def busiest_strangers(a: CpuSnapshot, b: CpuSnapshot, n: int = 3) -> list[tuple[str, float]]:
    span = b.wall - a.wall
    by_name: dict[str, float] = defaultdict(float)
    for pid, (comm, seconds) in b.strangers.items():
        by_name[comm] += (seconds - a.strangers.get(pid, (comm, 0.0))[1]) / span
    return sorted(((k, v) for k, v in by_name.items() if v >= 0.01), key=lambda kv: -kv[1])[:n]


# -- wrk -----------------------------------------------------------------------------------------

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_DONE = re.compile(r"(\d+) requests in ([\d.]+)(ms|s|m)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_PCT = re.compile(r"^pct ([\d.]+) ([\d.]+)$", re.M)
_WRAPPED = re.compile(r"^pool-wrapped (\d+)$", re.M)


@dataclass
class Level:
    target: str
    connections: int
    seconds: float
    rps: float
    requests: int
    pct: dict[str, float]  # "50" → ms
    errors: int
    wrapped: int
    stored: int = 0  # rows the target's database gained for this level (after draining)
    cores: dict[str, float] = field(default_factory=dict)
    strangers: list[tuple[str, float]] = field(default_factory=list)
    load: str = ""

    @property
    def p99(self) -> float:
        return self.pct["99"]


def _wrk_argv(
    url: str, script: Path, requests_file: Path, seconds: int, connections: int
) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(requests_file),
    ]


def _parse(out: str, target: str, connections: int, seconds: int) -> Level:
    rps, done = _RPS.search(out), _DONE.search(out)
    assert rps and done, out
    non2xx = _NON2XX.search(out)
    sockets = _SOCKET.search(out)
    wrapped = _WRAPPED.search(out)
    return Level(
        target=target,
        connections=connections,
        seconds=seconds,
        rps=float(rps.group(1)),
        requests=int(done.group(1)),
        pct={m.group(1).removesuffix(".0"): float(m.group(2)) for m in _PCT.finditer(out)},
        errors=(int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
        wrapped=int(wrapped.group(1)) if wrapped else 0,
    )


# -- processes and databases ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db_url(name: str) -> str:
    base = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    return (
        make_url(base)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _wait_healthy(url: str, path: str = "/healthz", limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                r = await client.get(url + path)
                if r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


# cProfile (CPU time, not wall time: on a saturated machine wall time charges waiting for a core
# to whatever call was preempted), switched on by SIGUSR1 after start-up and warm-up, and
# written on SIGUSR2, so imports and start-up are not in the figures.
_PROFILED = """
import cProfile, runpy, signal, sys, time
script, out = sys.argv[1], sys.argv[2]
sys.argv = [script, "api"]
prof = cProfile.Profile(time.process_time)
def start(*_):
    prof.enable()
def stop(*_):
    prof.disable()
    prof.dump_stats(out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
runpy.run_path(script, run_name="__main__")
"""


def _command(name: str, profile_dir: Path | None) -> list[str]:
    script = str(BIN / name)
    if profile_dir is None:
        return [script, "api"]
    return [sys.executable, "-c", _PROFILED, script, str(profile_dir / f"{name}.prof")]


@dataclass
class Stack:
    procs: dict[str, subprocess.Popen[bytes]]
    urls: dict[str, str]
    databases: dict[str, str]


@asynccontextmanager
async def running(profile_dir: Path | None = None) -> AsyncIterator[Stack]:
    tag = uuid.uuid4().hex[:6]
    dbs = {
        "gateway": _db_url(f"bench_hooks_gw_{tag}"),
        "integrations": _db_url(f"bench_hooks_int_{tag}"),
        "bare": _db_url(f"bench_hooks_bare_{tag}"),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        await migrate("gateway_service:migrations", dbs["gateway"])
        await migrate("integrations_service:migrations", dbs["integrations"])
        await create_database_if_missing(dbs["bare"])
        conn = await asyncpg.connect(_dsn(dbs["bare"]))
        try:
            await conn.execute(
                f"CREATE TABLE {BARE_TABLE} (id uuid PRIMARY KEY, raw_body bytea NOT NULL, "
                "received_at timestamptz NOT NULL)"
            )
        finally:
            await conn.close()
        ports = {name: _free_port() for name in ("gateway", "integrations", "bare")}
        env = {
            **os.environ,
            "SCHEDULER_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "ICIMS_WEBHOOK_SECRET": SECRET,
            "INTEGRATIONS_DATABASE_URL": dbs["integrations"],
            "INTEGRATIONS_PORT": str(ports["integrations"]),
            "GATEWAY_DATABASE_URL": dbs["gateway"],
            "GATEWAY_PORT": str(ports["gateway"]),
            "GATEWAY_INTEGRATIONS_URL": f"http://127.0.0.1:{ports['integrations']}",
            "BENCH_BARE_DSN": _dsn(dbs["bare"]),
        }
        procs["integrations"] = subprocess.Popen(
            _command("integrations", profile_dir), env=env, start_new_session=True
        )
        procs["gateway"] = subprocess.Popen(
            _command("gateway", profile_dir), env=env, start_new_session=True
        )
        procs["bare"] = subprocess.Popen(
            [sys.executable, __file__, "--bare-server", str(ports["bare"])],
            env=env,
            start_new_session=True,
        )
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        await _wait_healthy(urls["integrations"])
        await _wait_healthy(urls["gateway"])
        await _wait_healthy(urls["bare"], path="/docs")
        yield Stack(procs, urls, dbs)
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        for url in dbs.values():
            await drop_database(url)


async def _stored(integrations_db: str) -> dict[str, int]:
    conn = await asyncpg.connect(_dsn(integrations_db))
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS rows, count(*) FILTER (WHERE verified) AS verified, "
            "count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS duplicates, "
            "count(*) FILTER (WHERE status <> 'received') AS not_received FROM webhook_events"
        )
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    assert row is not None
    return {**dict(row), "outbox": int(outbox)}


async def _bare_rows(bare_db: str) -> int:
    conn = await asyncpg.connect(_dsn(bare_db))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {BARE_TABLE}"))
    finally:
        await conn.close()


# -- a run ---------------------------------------------------------------------------------------


async def _rows(database: str, target: str) -> int:
    table = BARE_TABLE if target == "bare" else "webhook_events"
    conn = await asyncpg.connect(_dsn(database))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def _drain(database: str, target: str, limit: float = 30.0) -> int:
    """Wait until requests still queued in the servers when wrk stopped are stored, so a level
    never starts behind the previous one's backlog. Returns the row count then."""
    deadline = time.monotonic() + limit
    last = await _rows(database, target)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = await _rows(database, target)
        if now == last:
            break
        last = now
    return last


async def _measure(
    stack: Stack,
    target: str,
    workdir: Path,
    seconds: int,
    connections: int,
    max_rate: int,
) -> Level:
    url = stack.urls[ENTRY[target]] + PATH
    requests_file = workdir / f"{target}-{connections}.bin"
    write_requests(requests_file, max(1000, max_rate * (seconds + 1)))
    ours = {stack.procs[name].pid: name for name in ("gateway", "integrations", "bare")}
    database = stack.databases["bare" if target == "bare" else "integrations"]
    database_name = make_url(database).database or ""
    rows_before = await _rows(database, target)
    wrk = subprocess.Popen(
        _wrk_argv(url, workdir / "requests.lua", requests_file, seconds, connections),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wrk's own CPU counts as its own group, not as "others".
    ours[wrk.pid] = "wrk"
    before = CpuSnapshot.take(ours, database_name)
    assert wrk.stdout is not None and wrk.stderr is not None
    out = wrk.stdout.read()  # EOF when wrk exits; it stays a zombie (CPU still readable) until
    time.sleep(0.05)  # reaped below
    after = CpuSnapshot.take(ours, database_name)
    err = wrk.stderr.read()
    if wrk.wait(timeout=60) != 0:
        raise RuntimeError(f"wrk failed: {err}")
    level = _parse(out, target, connections, seconds)
    level.cores = cpu_between(before, after)
    level.strangers = busiest_strangers(before, after)
    level.load = loadavg()
    level.stored = await _drain(database, target) - rows_before
    requests_file.unlink()
    return level


async def _warm(stack: Stack, workdir: Path, target: str) -> None:
    url = stack.urls[ENTRY[target]] + PATH
    requests_file = workdir / f"warm-{target}.bin"
    write_requests(requests_file, 3000)
    subprocess.run(
        _wrk_argv(url, workdir / "requests.lua", requests_file, 2, 8),
        capture_output=True,
        check=True,
    )
    requests_file.unlink()
    await _drain(stack.databases["bare" if target == "bare" else "integrations"], target)


def _print_levels(levels: Sequence[Level]) -> None:
    print(
        f"  {'target':7} {'conns':>5} {'deliv/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'p99.9':>8} {'errors':>6} {'stored':>7}  CPU ms/delivery by process (cores)"
    )
    for lv in levels:
        groups = {
            "ours": ("gateway", "integrations", "postgres", "wrk"),
            "direct": ("integrations", "postgres", "wrk"),
            "bare": ("bare", "postgres", "wrk"),
        }[lv.target]
        cpu = "  ".join(
            f"{g} {1000 * lv.cores.get(g, 0.0) / lv.rps:.2f} ({lv.cores.get(g, 0.0):.2f})"
            for g in groups
            if lv.rps
        )
        print(
            f"  {lv.target:7} {lv.connections:5d} {lv.rps:8.0f} {lv.pct['50']:8.2f} "
            f"{lv.pct['90']:8.2f} {lv.p99:8.2f} {lv.pct['99.9']:8.2f} {lv.errors:6d} "
            f"{lv.stored:7d}  {cpu}"
        )
        strangers = ", ".join(f"{n} {c:.2f}" for n, c in lv.strangers) or "-"
        print(
            f"  {'':7} {'':5} machine {lv.cores.get('machine', 0.0):.2f} cores, others "
            f"{lv.cores.get('others', 0.0):.2f} ({strangers}); pg other "
            f"{lv.cores.get('pg other', 0.0):.2f}; load {lv.load}"
            + (f"; POOL WRAPPED {lv.wrapped}x (the same requests sent again)" if lv.wrapped else "")
        )


def _best(levels: Sequence[Level]) -> tuple[Level | None, Level]:
    ok = [lv for lv in levels if lv.p99 <= AIM_P99_MS and not lv.errors]
    sustained = max(ok, key=lambda lv: lv.rps) if ok else None
    return sustained, max(levels, key=lambda lv: lv.rps)


def _summary(ours: Sequence[Level], bare: Sequence[Level], direct: Sequence[Level]) -> None:
    o_sus, o_sat = _best(ours)
    b_sus, b_sat = _best(bare)

    def fmt(lv: Level | None) -> str:
        if lv is None:
            return f"none with p99 <= {AIM_P99_MS:.0f} ms"
        return f"{lv.rps:.0f}/s (p99 {lv.p99:.1f} ms, {lv.connections} conns)"

    print(f"  sustained (the highest rate at a level whose p99 <= {AIM_P99_MS:.0f} ms):")
    print(f"    ours {fmt(o_sus)}; bare {fmt(b_sus)}")
    if direct:
        print(f"    (integrations without the gateway {fmt(_best(direct)[0])})")
    if o_sus and b_sus:
        print(f"    ratio ours/bare {o_sus.rps / b_sus.rps:.2f} (aim >= {AIM_RATIO})")
    print("  saturation (the highest rate at any level):")
    print(f"    ours {fmt(o_sat)}; bare {fmt(b_sat)}")
    if direct:
        print(f"    (integrations without the gateway {fmt(_best(direct)[1])})")
    print(f"    ratio ours/bare {o_sat.rps / b_sat.rps:.2f}")
    met = o_sus and b_sus and o_sus.rps >= AIM_RATE and o_sus.rps / b_sus.rps >= AIM_RATIO
    print(
        f"  aim: >= {AIM_RATE:.0f}/s with p99 <= {AIM_P99_MS:.0f} ms, ratio >= {AIM_RATIO}: "
        + ("met" if met else "NOT met")
    )


def _package(filename: str, func: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    for root in ("/services/", "/libs/"):
        if root in filename:
            return root.strip("/") + "/" + filename.split(root)[1].split("/")[0]
    if filename.startswith("<frozen importlib"):
        return "importlib (imports at run time)"
    if filename == "~":
        return f"builtin {func}"[:60]
    return "stdlib " + filename.rsplit("/", 1)[-1]


def _print_profiles(profile_dir: Path, deliveries: int, top: int = 12) -> None:
    per = max(deliveries, 1)
    for name in ("gateway", "integrations"):
        path = profile_dir / f"{name}.prof"
        if not path.exists():
            print(f"  {name}: no profile written")
            continue
        stats = pstats.Stats(str(path))
        entries = stats.stats.items()  # type: ignore[attr-defined]
        total = sum(tottime for _k, (_cc, _n, tottime, _ct, _c) in entries)
        by_package: dict[str, float] = defaultdict(float)
        for (filename, _line, func), (_cc, _n, tottime, _ct, _c) in entries:
            by_package[_package(filename, func)] += tottime
        print(
            f"\n  {name}: {1000 * total / per:.2f} ms of profiled CPU per delivery "
            "(cProfile inflates it: compare shares, not absolutes); own time by package:"
        )
        for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {100 * seconds / total:5.1f}%  {package}")
        print("    top functions by own time:")
        rows = sorted(entries, key=lambda kv: -kv[1][2])[:top]
        for (filename, line, func), (_cc, calls, tottime, _ct, _c) in rows:
            where = filename.split("site-packages/")[-1].split("/work/main/")[-1]
            print(
                f"    {100 * tottime / total:5.1f}%  {calls / per:7.1f} calls/delivery  "
                f"{func} ({where}:{line})"
            )


async def run(args: argparse.Namespace) -> int:
    if not shutil.which("wrk"):
        print(f"{NAME}: skipped: wrk is not installed (apt-get install wrk)")
        return 0
    seconds: int = args.seconds or (5 if args.quick else 20)
    if seconds > 240:
        raise SystemExit(f"{NAME}: --seconds must be <= 240 (requests are signed before a run)")
    levels_wanted = [int(c) for c in args.connections.split(",") if c]
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        levels_wanted = levels_wanted[:1]
    targets = ["bare", "direct", "ours"] if args.direct else ["bare", "ours"]
    if profile_dir is not None:
        targets = ["ours"]
    results: dict[str, list[Level]] = {t: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as tmp:
        workdir = Path(tmp)
        (workdir / "requests.lua").write_text(LUA)
        async with running(profile_dir) as stack:
            for target in targets:
                await _warm(stack, workdir, target)
            warm_rows = (await _stored(stack.databases["integrations"]))["rows"]
            profiled = [stack.procs["gateway"], stack.procs["integrations"]]
            for connections in levels_wanted:
                for target in targets:
                    for p in profiled if profile_dir else []:
                        p.send_signal(signal.SIGUSR1)
                    results[target].append(
                        await _measure(stack, target, workdir, seconds, connections, args.max_rate)
                    )
                    for p in profiled if profile_dir else []:
                        p.send_signal(signal.SIGUSR2)
            if profile_dir:
                await asyncio.sleep(2)  # let them write their profiles
            stored = await _stored(stack.databases["integrations"])
            bare_rows = await _bare_rows(stack.databases["bare"])
    everything = [lv for t in targets for lv in results[t]]
    sent = sum(lv.requests for lv in everything if lv.target != "bare")
    print(
        f"{NAME}: signed gzip'd iCIMS deliveries, wrk closed loop, {seconds}s per level, "
        f"load {loadavg()}, {os.cpu_count()} cores"
    )
    _print_levels(everything)
    new_rows = stored["rows"] - warm_rows
    print(
        f"  integrations stored {new_rows} rows for {sent} answered deliveries (plus those in "
        f"flight at wrk's stop); of all {stored['rows']}: {stored['verified']} verified, "
        f"{stored['duplicates']} duplicates, {stored['not_received']} not left as received, "
        f"{stored['outbox']} outbox events. bare stored {bare_rows} rows"
    )
    if profile_dir is not None:
        _print_profiles(profile_dir, new_rows)
        return 0
    _summary(results["ours"], results["bare"], results.get("direct", []))
    # Wrapping around only matters where duplicates do (bare stores whatever it gets).
    bad = (
        any(lv.errors for lv in everything)
        or any(lv.wrapped or lv.stored < lv.requests for lv in everything if lv.target != "bare")
        or stored["verified"] != stored["rows"]
        or stored["duplicates"]
        or new_rows < sent
    )
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=NAME)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=None)
    parser.add_argument(
        "--connections", default="2,4,16,64", help="wrk connection levels (closed loop)"
    )
    parser.add_argument(
        "--max-rate",
        type=int,
        default=5000,
        help="requests pre-built per level = this x (seconds + 1), each sent once",
    )
    parser.add_argument(
        "--no-direct",
        dest="direct",
        action="store_false",
        help="skip the integrations-without-gateway target",
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile gateway + integrations")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.bare_server:
        return serve_bare(args.bare_server)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
