"""Staff pages under load, beside a bare ``/healthz`` baseline in the same run.

    python -m benchmarks.pages [--staff 20] [--seconds 20] [--arrivals 2] [--requests 300]

One API process (``app.main:create_app`` under uvicorn, as ``asylum-intake api`` runs it) on a
fresh PostgreSQL database with a private Redis as broker, as in production, and argon2 at its
production cost. The database holds ``--requests`` open requests made through the intake
service (encrypted personal data, history, outbox rows) and ``--staff`` staff accounts.

1. Baseline: ``/healthz`` alone, every 50 ms for ``--baseline-seconds``.
2. Load: the staff sign in through ``/staff/sign-in`` (argon2, all at once), then each refreshes
   the queue (``/staff/queue``, 50 rows with the header counts) and opens a case from it
   (``/staff/cases/<ref>``: decrypted request, routing, history, presence), with 0.5-1.5 s
   between pages, for ``--seconds``; meanwhile new requests arrive at a steady ``--arrivals``
   per second through ``POST /api/v1/requests`` and ``/healthz`` is probed every 50 ms.

Goals: page p95 (queue and case pages) under 150 ms, and ``/healthz`` never over
50 ms during the load (sign-ins included): a page's database work or argon2 must never hold
up the event loop. The figures are wall-clock times seen by the client, which runs on the same
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import random
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks._harness import emit, fresh_database, percentile, redis_server, server

PASSWORD = "benchmark staff password 2026"
PAGE_P95_GOAL_MS = 150.0
HEALTHZ_MAX_GOAL_MS = 50.0
PROBE_SECONDS = 0.05
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
CASE_LINK = re.compile(r'href="/staff/cases/([A-Z0-9-]+)"')


def submission(i: int, run: str) -> dict[str, Any]:
    return {
        "requester_type": "applicant",
        "full_name": f"Benchmark Applicant {i}",
        "email": f"pages-{run}-{i}@example.org",
        "phone": "+996 555 123 456",
        "preferred_channel": "email",
        "language": "ru",
        "timezone": "Asia/Bishkek",
        "country_of_origin": "KG",
        "country_of_residence": "DE",
        "case_stage": "refused_appeal",
        "topics": ["political_repression"],
        "case_summary": "A summary of the case, a few sentences long. " * 5,
        "wants": ["consultation", "expert_cv"],
        "consent_data_processing": True,
    }


def seed(url: str, env: dict[str, str], *, staff: int, requests: int, run: str) -> list[str]:
    """Staff accounts and open requests, through the services (same master key as the
    server). Returns the staff e-mails."""
    os.environ.update(env)
    from app.accounts import service as accounts
    from app.core import database
    from app.core.logging import configure_logging
    from app.core.settings import get_settings
    from app.intake import service as intake
    from app.intake.schemas import SubmitIn
    from app.models import Role

    get_settings.cache_clear()
    configure_logging("console", "WARNING")
    database.set_engine(database.build_engine(url))
    emails = [f"staff-{run}-{i}@example.org" for i in range(staff)]
    with database.session_scope() as session:
        for i, email in enumerate(emails):
            accounts.create_user(
                session,
                email=email,
                display_name=f"Staff {i}",
                role=Role.staff,
                password=PASSWORD,
            )
    for start in range(0, requests, 50):
        with database.session_scope() as session:
            for i in range(start, min(start + 50, requests)):
                intake.submit(session, SubmitIn.model_validate(submission(i, run + "-seed")))
    database.set_engine(None)
    return emails


@dataclass
class Figures:
    healthz: list[float] = field(default_factory=list)
    healthz_at: list[float] = field(default_factory=list)  # when each probe was sent
    sign_in: list[float] = field(default_factory=list)
    sign_in_window: list[float] = field(default_factory=list)  # starts and ends
    queue: list[float] = field(default_factory=list)
    case: list[float] = field(default_factory=list)
    submit: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
    t0 = time.perf_counter()
    resp = await client.request(method, url, **kw)
    return resp, (time.perf_counter() - t0) * 1000


async def probe(
    client: httpx.AsyncClient,
    stop: asyncio.Event,
    out: list[float],
    errors: Figures,
    sent_at: list[float] | None = None,
) -> None:
    """``/healthz`` every ``PROBE_SECONDS`` on its own connection."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            resp, ms = await _timed(client, "GET", "/healthz")
        except httpx.TransportError:
            errors.error("healthz")
        else:
            if resp.status_code == 200:
                out.append(ms)
                if sent_at is not None:
                    sent_at.append(started)
            else:
                errors.error("healthz")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_SECONDS)


class Browser:
    """One person's cookies, kept by hand: they are Secure, and httpx's jar does not send them
    over the plain HTTP the benchmark speaks to 127.0.0.1 (browsers treat localhost as
    secure)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, float]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        resp, ms = await _timed(self.client, method, url, headers=headers, **kw)
        for line in resp.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return resp, ms


async def staff_member(
    client: httpx.AsyncClient, email: str, stop: asyncio.Event, figures: Figures, rng: random.Random
) -> None:
    """Signs in, then refreshes the queue and opens a case from it until the end. A timeout or
    a dropped connection is a failed request, counted, not the end of the run."""
    browser = Browser(client)
    try:
        form, _ = await browser.request("GET", "/staff/sign-in")
        hidden = dict(HIDDEN.findall(form.text))
        data = {**hidden, "email": email, "password": PASSWORD}
        figures.sign_in_window.append(time.perf_counter())
        resp, ms = await browser.request("POST", "/staff/sign-in", data=data)
        figures.sign_in_window.append(time.perf_counter())
    except httpx.TransportError:
        figures.error("sign_in")
        return
    if resp.status_code != 303:
        figures.error("sign_in")
        return
    figures.sign_in.append(ms)
    while not stop.is_set():
        page: httpx.Response | None = None
        with contextlib.suppress(httpx.TransportError):
            page, ms = await browser.request("GET", "/staff/queue")
        if page is None or page.status_code != 200:
            figures.error("queue")
            await asyncio.sleep(1.0)
            continue
        figures.queue.append(ms)
        refs = CASE_LINK.findall(page.text)
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        if stop.is_set() or not refs:
            break
        page = None
        with contextlib.suppress(httpx.TransportError):
            page, ms = await browser.request("GET", f"/staff/cases/{rng.choice(refs)}")
        if page is not None and page.status_code == 200:
            figures.case.append(ms)
        else:
            figures.error("case")
        await asyncio.sleep(rng.uniform(0.5, 1.5))


async def arrivals(
    client: httpx.AsyncClient, per_second: float, stop: asyncio.Event, figures: Figures
) -> None:
    """New requests at a steady rate (open loop: one every 1/rate s, whatever the answers)."""
    run = secrets.token_hex(3)
    interval = 1.0 / per_second
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        try:
            resp, ms = await _timed(client, "POST", "/api/v1/requests", json=submission(i, run))
        except httpx.TransportError:
            figures.error("submit")
            return
        if resp.status_code == 201:
            figures.submit.append(ms)
        else:
            figures.error("submit")

    start = time.perf_counter()
    i = 0
    while not stop.is_set():
        task = asyncio.create_task(one(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    await asyncio.gather(*pending)


async def run_load(
    base: str, emails: list[str], *, seconds: float, baseline_seconds: float, per_second: float
) -> tuple[list[float], Figures]:
    baseline: list[float] = []
    figures = Figures()
    # Every client is made and connected before measuring: making one costs the benchmark's own
    # event loop tens of milliseconds (TLS defaults), which would count as the server's time.
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30))
            for _ in range(len(emails) + 2)
        ]
        prober, submitter, staff_clients = clients[0], clients[1], clients[2:]
        for client in clients:
            await client.get("/healthz")
        stop = asyncio.Event()
        task = asyncio.create_task(probe(prober, stop, baseline, figures))
        await asyncio.sleep(baseline_seconds)
        stop.set()
        await task

        stop = asyncio.Event()
        rng = random.Random(18)
        tasks = [
            asyncio.create_task(
                probe(prober, stop, figures.healthz, figures, sent_at=figures.healthz_at)
            )
        ]
        tasks.append(asyncio.create_task(arrivals(submitter, per_second, stop, figures)))
        tasks += [
            asyncio.create_task(staff_member(c, e, stop, figures, random.Random(rng.random())))
            for c, e in zip(staff_clients, emails, strict=True)
        ]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    return baseline, figures


def _r(value: float) -> float:
    return round(value, 1)


def figures_of(baseline: list[float], f: Figures, args: argparse.Namespace) -> dict[str, Any]:
    pages = f.queue + f.case
    # /healthz while the staff sign in (argon2 at production cost, all at once) and after.
    start, end = min(f.sign_in_window, default=0.0), max(f.sign_in_window, default=0.0)
    during = [ms for ms, at in zip(f.healthz, f.healthz_at, strict=True) if at <= end]
    after = [ms for ms, at in zip(f.healthz, f.healthz_at, strict=True) if at > end]
    out: dict[str, Any] = {
        "staff": args.staff,
        "seconds": args.seconds,
        "arrivals_per_second": args.arrivals,
        "seeded_requests": args.requests,
        "baseline_healthz_n": len(baseline),
        "baseline_healthz_p50_ms": _r(percentile(baseline, 50)),
        "baseline_healthz_p99_ms": _r(percentile(baseline, 99)),
        "baseline_healthz_max_ms": _r(max(baseline, default=float("nan"))),
        "healthz_n": len(f.healthz),
        "healthz_p50_ms": _r(percentile(f.healthz, 50)),
        "healthz_p99_ms": _r(percentile(f.healthz, 99)),
        "healthz_max_ms": _r(max(f.healthz, default=float("nan"))),
        "healthz_during_sign_ins_max_ms": _r(max(during, default=float("nan"))),
        "healthz_after_sign_ins_max_ms": _r(max(after, default=float("nan"))),
        "sign_ins_seconds": _r(end - start),
        "sign_in_n": len(f.sign_in),
        "sign_in_p50_ms": _r(percentile(f.sign_in, 50)),
        "sign_in_max_ms": _r(max(f.sign_in, default=float("nan"))),
        "queue_n": len(f.queue),
        "queue_p50_ms": _r(percentile(f.queue, 50)),
        "queue_p95_ms": _r(percentile(f.queue, 95)),
        "case_n": len(f.case),
        "case_p50_ms": _r(percentile(f.case, 50)),
        "case_p95_ms": _r(percentile(f.case, 95)),
        "page_n": len(pages),
        "page_p50_ms": _r(percentile(pages, 50)),
        "page_p95_ms": _r(percentile(pages, 95)),
        "page_per_second": _r(len(pages) / args.seconds),
        "submit_n": len(f.submit),
        "submit_p95_ms": _r(percentile(f.submit, 95)),
        "errors": dict(sorted(f.errors.items())),
    }
    ok = not f.errors and len(f.sign_in) == args.staff
    out["page_p95_met"] = bool(pages) and percentile(pages, 95) < PAGE_P95_GOAL_MS and ok
    out["healthz_max_met"] = bool(f.healthz) and max(f.healthz) < HEALTHZ_MAX_GOAL_MS and ok
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--arrivals", type=float, default=2.0, help="new requests per second")
    parser.add_argument("--requests", type=int, default=300, help="open requests seeded")
    args = parser.parse_args()

    run = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    key = "bench:" + base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        "INTAKE_ENV": "development",
        "INTAKE_LOG_LEVEL": "WARNING",
        "INTAKE_MASTER_KEY": key,
        "INTAKE_DATA_DIR": str(workdir / "var"),
        # One client address sends everything: lift the per-address submission limit (it is
        # still counted on every submission).
        "INTAKE_SUBMIT_RATE_LIMIT": "100000",
    }
    try:
        with redis_server(workdir) as broker, fresh_database("bench_pages") as url:
            emails = seed(
                url,
                {**env, "INTAKE_BROKER_URL": "memory://", "INTAKE_DATABASE_URL": url},
                staff=args.staff,
                requests=args.requests,
                run=run,
            )
            server_env = {**env, "INTAKE_BROKER_URL": broker, "INTAKE_DATABASE_URL": url}
            with server("app.main:create_app", server_env) as base:
                # This process imported the app to seed: no collector pause of its own may land
                # inside a measured request (the run is short and bounded).
                gc.collect()
                gc.freeze()
                gc.disable()
                baseline, figures = asyncio.run(
                    run_load(
                        base,
                        emails,
                        seconds=args.seconds,
                        baseline_seconds=args.baseline_seconds,
                        per_second=args.arrivals,
                    )
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    emit(figures_of(baseline, figures, args))


if __name__ == "__main__":
    main()
