"""Shared pieces of the benchmarks: a fresh PostgreSQL database, a server process on a free
port, a bounded closed-loop HTTP load, percentiles, and the closing JSON line.

Every figure is compared with a baseline measured in the same run on the same machine: one
machine's absolute numbers are noise. Load goes to 127.0.0.1 only, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database; dropped afterwards. Yields its SQLAlchemy URL."""
    from app.core import migrate

    name = f"{prefix}_{secrets.token_hex(4)}"
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(app_spec: str, env: dict[str, str], *, factory: bool = True) -> Iterator[str]:
    """Run ``uvicorn <app_spec>`` (one process, as ``asylum-intake api`` does); yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", app_spec, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--no-access-log", "--log-level", "warning"] + (["--factory"] if factory else [])
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server {app_spec} did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def closed_loop(
    url: str,
    make_body: Callable[[int], dict[str, Any]],
    *,
    connections: int = 32,
    seconds: float = 8.0,
    warmup_seconds: float = 1.5,
    max_requests: int = 50_000,
    expect_status: int = 201,
) -> LoadResult:
    """``connections`` clients each sending the next request when the last one answered."""

    async def run() -> LoadResult:
        counter = 0
        latencies: list[float] = []
        errors = 0
        transport_errors: Counter[str] = Counter()
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            start = time.perf_counter()
            measure_from = start + warmup_seconds
            stop_at = measure_from + seconds

            async def worker() -> None:
                nonlocal counter, errors
                while time.perf_counter() < stop_at and counter < max_requests:
                    counter += 1
                    body = make_body(counter)
                    t0 = time.perf_counter()
                    try:
                        resp = await client.post(url, json=body)
                    except httpx.TransportError as exc:
                        # A dropped connection is a failed request, counted (and named), not
                        # the end of the run.
                        if t0 >= measure_from:
                            errors += 1
                            transport_errors[type(exc).__name__] += 1
                        continue
                    t1 = time.perf_counter()
                    if t0 >= measure_from:
                        if resp.status_code == expect_status:
                            latencies.append((t1 - t0) * 1000)
                        else:
                            errors += 1

            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = min(time.perf_counter(), stop_at) - measure_from
        if transport_errors:
            print(f"closed_loop {url}: transport errors {dict(transport_errors)}", file=sys.stderr)
        return LoadResult(len(latencies), errors, max(elapsed, 1e-9), latencies)

    return asyncio.run(run())


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    """Milliseconds per call, ``runs`` times."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "mean_ms": round(statistics.fmean(values), 3) if values else float("nan"),
    }


def emit(figures: dict[str, Any]) -> None:
    """Print the figures readably, then (last) one line of JSON holding all of them."""
    import math

    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in figures.items()
    }
    for key, value in clean.items():
        print(f"{key:>40}: {value}")
    print(json.dumps(clean, sort_keys=True, allow_nan=False), flush=True)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private ``redis-server`` on a free port (nothing kept on disk); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*args, "--dir", str(workdir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
