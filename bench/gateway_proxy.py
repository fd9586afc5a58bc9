"""The gateway's overhead: an authenticated GET routed through the gateway to scheduling,
beside the same GET made straight to scheduling with an identity token.

Both run as real uvicorn processes (one worker each) against their own fresh databases; `wrk`
(Debian's package) generates the load from another process. The routed request costs the
gateway a session lookup (one indexed query), signing the identity token and one proxied
HTTP call; the service's own work (an org-scoped list of one request) is the same in both.

    uv run python bench/run.py --only gateway_proxy [--quick] [--seconds N] [--connections N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from gateway_service.auth import service as signin
from gateway_service.auth import sessions as session_store
from gateway_service.auth.context import Auth
from gateway_service.orgs import service as orgs
from gateway_service.settings import Settings as GatewaySettings
from servicekit import identity as tokens
from servicekit.db import create_engine, create_sessionmaker, drop_database, unit_of_work
from servicekit.migrations import migrate
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
PATH = "/api/scheduling/requests?limit=1"


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


async def _seed(gateway_db: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    settings = GatewaySettings(env="test", database_url=gateway_db)
    engine = create_engine(gateway_db)
    async with unit_of_work(create_sessionmaker(engine)) as db:
        user_id = await signin.upsert_user(db, sub="bench", email="bench@example.com", name=None)
        auth = Auth(
            user_id=user_id, email="bench@example.com", name=None, superadmin=False, session=None
        )
        org_id = await orgs.create_org(db, auth, name="Bench", time_zone="UTC", ip=None)
        token, _ = await session_store.create(
            db, settings, user_id=user_id, active_org_id=org_id, ip=None, user_agent="wrk"
        )
    await engine.dispose()
    return token, user_id, org_id


async def _wait_healthy(url: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


_LAT = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, header: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lat = {m.group(1): _ms(m.group(2), m.group(3)) for m in _LAT.finditer(out)}
    bad = _NON2XX.search(out)
    rps = _RPS.search(out)
    assert rps, out
    return {
        "rps": float(rps.group(1)),
        "p50": lat["50"],
        "p99": lat["99"],
        "errors": float(bad.group(1)) if bad else 0.0,
    }


async def run(seconds: int, connections: int) -> int:
    if not shutil.which("wrk"):
        print("gateway_proxy: skipped: wrk is not installed (apt-get install wrk)")
        return 0
    tag = uuid.uuid4().hex[:6]
    gateway_db, scheduling_db = _db_url(f"bench_gw_{tag}"), _db_url(f"bench_sched_{tag}")
    await migrate("gateway_service:migrations", gateway_db)
    await migrate("scheduling_service:migrations", scheduling_db)
    cookie, user_id, org_id = await _seed(gateway_db)
    sched_port, gw_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SCHEDULER_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "SCHEDULING_DATABASE_URL": scheduling_db,
        "SCHEDULING_PORT": str(sched_port),
        "GATEWAY_DATABASE_URL": gateway_db,
        "GATEWAY_PORT": str(gw_port),
        "GATEWAY_SCHEDULING_URL": f"http://127.0.0.1:{sched_port}",
    }
    procs = [
        subprocess.Popen([str(BIN / "scheduling"), "api"], env=env, start_new_session=True),
        subprocess.Popen([str(BIN / "gateway"), "api"], env=env, start_new_session=True),
    ]
    try:
        await _wait_healthy(f"http://127.0.0.1:{sched_port}")
        await _wait_healthy(f"http://127.0.0.1:{gw_port}")
        identity = tokens.sign(
            tokens.Identity(
                kind="user",
                subject=str(user_id),
                email="bench@example.com",
                org_id=org_id,
                role="admin",
            ),
            DEV_INTERNAL_TOKEN_SECRET,
            ttl_seconds=3600,
        )
        direct_url = f"http://127.0.0.1:{sched_port}{PATH}"
        routed_url = f"http://127.0.0.1:{gw_port}{PATH}"
        warm = max(2, seconds // 5)
        _wrk(direct_url, f"{tokens.HEADER}: {identity}", warm, connections)
        _wrk(routed_url, f"Cookie: session={cookie}", warm, connections)
        direct = _wrk(direct_url, f"{tokens.HEADER}: {identity}", seconds, connections)
        routed = _wrk(routed_url, f"Cookie: session={cookie}", seconds, connections)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=15)
        await drop_database(gateway_db)
        await drop_database(scheduling_db)

    print(
        f"gateway_proxy: GET {PATH}, {connections} connections, {seconds}s each, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in (("direct", direct), ("gateway", routed)):
        print(f"  {name:10} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8.0f}")
    print(
        f"  gateway adds {routed['p50'] - direct['p50']:.2f} ms at p50 "
        f"(aim <= 2 ms); keeps {100 * routed['rps'] / direct['rps']:.0f}% of direct "
        "throughput (aim >= 60%)"
    )
    return 1 if direct["errors"] or routed["errors"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway_proxy")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=None)
    parser.add_argument("--connections", type=int, default=16)
    args, _ = parser.parse_known_args(argv)
    seconds = args.seconds or (5 if args.quick else 20)
    return asyncio.run(run(seconds, args.connections))


if __name__ == "__main__":
    raise SystemExit(main())
