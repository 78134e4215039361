"""Outbox dispatch: how fast due e-mails reach an SMTP server, with one and with two workers.

    .venv/bin/python -m benchmarks.dispatch [--messages 10000] [--burst 2000] [--concurrency 4]

Everything is real and on loopback: a fresh PostgreSQL database per run, a private
``redis-server`` as the broker, ``asylum-intake worker`` processes (each with ``--concurrency``
prefork children) and ``asylum-intake beat``, and an SMTP sink (aiosmtpd, in this process) that
takes 20 ms per message without blocking its other sessions. The e-mails are admin test e-mails
(``notifications.test_email``) written with ``app.outbox.service.enqueue``, all made due at the
same instant in one commit.

Runs: (a) ``--messages`` due at once, 1 worker process; (b) the same with 2 worker processes;
(c) ``--burst`` due at once with 2 workers. Figures: messages per second (count / (last sent_at
- due_at)) and lag from due to sent (``sent_at - due_at`` of each row: p50, p99, max), and how
many Message-IDs the sink saw more than once. Goals: p99 lag under 10 s for (c), and the second
worker adding at least 70 % of the first one's throughput ((b) >= 1.7 x (a)).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import emit, free_port, fresh_database, percentile, redis_server

#: The console script of the environment running the benchmark (wherever that is installed),
#: not a ``.venv/`` that may not exist or may hold another version.
CLI = Path(sys.executable).parent / "asylum-intake"
SINK_SECONDS_PER_MESSAGE = 0.02


class Sink:
    """SMTP sink: 20 ms per message (asyncio sleep, so sessions overlap), Message-IDs counted."""

    def __init__(self, seconds_per_message: float) -> None:
        self.seconds_per_message = seconds_per_message
        self.ids: Counter[bytes] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.seconds_per_message)
        content: bytes = envelope.original_content or b""
        start = content.find(b"Message-ID:")
        msgid = content[start : content.find(b"\n", start)].strip() if start >= 0 else b"?"
        with self.lock:
            self.ids[msgid] += 1
        return "250 OK"

    def duplicates(self) -> int:
        with self.lock:
            return sum(1 for n in self.ids.values() if n > 1)


@contextlib.contextmanager
def sink(seconds_per_message: float) -> Iterator[tuple[Sink, int]]:
    from aiosmtpd.controller import Controller

    handler = Sink(seconds_per_message)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


class Proc:
    """A child process in its own process group; ``stop()`` ends the whole group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                args,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.name}: no {text!r} after {timeout}s:\n{tail}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the process and its living descendants so far."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rfind(")") + 2 :].split()[1]), []).append(
                int(entry.name)
            )
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def configure(env: dict[str, str]) -> None:
    """Point this process's settings (enqueue, the nudge, the figures) at the run's services."""
    from app.core import database, tasks
    from app.core.settings import get_settings

    for key in [k for k in os.environ if k.startswith("INTAKE_")]:
        del os.environ[key]
    os.environ.update(env)
    get_settings.cache_clear()
    tasks.producer.cache_clear()
    database.set_engine(None)


def enqueue_due(count: int) -> None:
    """``count`` test e-mails through the outbox service, all due at the same instant, in one
    commit (after which the usual nudge asks a worker to pump)."""
    from sqlalchemy import update

    from app.core.database import session_scope
    from app.core.time import now
    from app.models import OutboxMessage
    from app.notifications.service import TEST_EMAIL
    from app.outbox import service

    with session_scope() as session:
        for i in range(count):
            service.enqueue(session, TEST_EMAIL, {"to": f"sink{i % 50}@example.org"})
        session.execute(update(OutboxMessage).values(due_at=now()))


def progress() -> tuple[int, int]:
    from sqlalchemy import func, select

    from app.core.database import session_scope
    from app.models import OutboxMessage, OutboxStatus

    with session_scope() as session:
        counts = dict(
            session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        )
    return int(counts.get(OutboxStatus.sent, 0)), int(counts.get(OutboxStatus.dead, 0))


def lags() -> list[float]:
    from sqlalchemy import select

    from app.core.database import session_scope
    from app.models import OutboxMessage, OutboxStatus

    with session_scope() as session:
        rows = session.execute(
            select(OutboxMessage.due_at, OutboxMessage.sent_at).where(
                OutboxMessage.status == OutboxStatus.sent
            )
        ).all()
    return [(sent - due).total_seconds() for due, sent in rows if sent is not None]


def run(
    label: str, *, messages: int, workers: int, concurrency: int, base: Path, sink_seconds: float
) -> dict[str, Any]:
    workdir = base / label
    workdir.mkdir(parents=True)
    with (
        fresh_database("bench_dispatch") as db_url,
        redis_server(workdir) as broker,
        sink(sink_seconds) as (smtp, smtp_port),
    ):
        env = {
            "INTAKE_ENV": "development",
            "INTAKE_DATA_DIR": str(workdir / "var"),
            "INTAKE_DATABASE_URL": db_url,
            "INTAKE_BROKER_URL": broker,
            "INTAKE_SMTP_HOST": "127.0.0.1",
            "INTAKE_SMTP_PORT": str(smtp_port),
            "INTAKE_SMTP_SECURITY": "none",
            "INTAKE_OUTBOX_POLL_SECONDS": "1",
            "INTAKE_LOG_LEVEL": "INFO",  # as in production: a JSON line per sent e-mail
            "INTAKE_LOG_FORMAT": "json",
        }
        configure(env)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")} | env
        procs: list[Proc] = []
        try:
            for n in range(workers):
                args = [str(CLI), "worker", "--concurrency", str(concurrency)]
                procs.append(Proc(f"worker{n + 1}", args, child_env, workdir))
            for p in procs:
                p.wait_for_log(" ready.")
            procs.append(Proc("beat", [str(CLI), "beat"], child_env, workdir))
            t0 = time.monotonic()
            enqueue_due(messages)
            enqueue_seconds = time.monotonic() - t0
            cpu_before = sum(p.cpu_seconds() for p in procs)
            own_before = time.process_time()
            deadline = time.monotonic() + max(120.0, messages / 20)
            sent = dead = 0
            while time.monotonic() < deadline:
                sent, dead = progress()
                if sent + dead >= messages:
                    break
                time.sleep(0.5)
            worker_cpu = sum(p.cpu_seconds() for p in procs) - cpu_before
            sink_cpu = time.process_time() - own_before
            values = lags()
        finally:
            for p in reversed(procs):
                p.stop()
        span = max(values) if values else float("nan")
        figures = {
            f"{label}_messages": messages,
            f"{label}_workers": workers,
            f"{label}_sent": sent,
            f"{label}_dead": dead,
            f"{label}_per_second": round(len(values) / span, 1) if values else 0.0,
            f"{label}_lag_p50_s": round(percentile(values, 50), 2),
            f"{label}_lag_p99_s": round(percentile(values, 99), 2),
            f"{label}_lag_max_s": round(span, 2),
            f"{label}_duplicates_at_sink": smtp.duplicates(),
            f"{label}_enqueue_seconds": round(enqueue_seconds, 1),
            # Where the time goes: CPU of the worker processes (and beat) and of this process
            # (the SMTP sink, mostly) per message sent.
            f"{label}_worker_cpu_ms_per_message": round(worker_cpu / max(sent, 1) * 1000, 2),
            f"{label}_sink_cpu_ms_per_message": round(sink_cpu / max(sent, 1) * 1000, 2),
        }
        print(f"{label}: {figures}", file=sys.stderr, flush=True)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=4, help="prefork children per worker")
    parser.add_argument(
        "--sink-ms",
        type=float,
        default=SINK_SECONDS_PER_MESSAGE * 1000,
        help="how long the SMTP sink takes per message (a slow relay: e.g. 200)",
    )
    args = parser.parse_args()
    if not CLI.exists():
        parser.error(f"{CLI} not found: install the project into this interpreter's environment")
    base = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    started = time.monotonic()
    figures: dict[str, Any] = {
        "sink_ms_per_message": args.sink_ms,
        "concurrency_per_worker": args.concurrency,
        # The machine is shared: read the figures against its size and how busy it was.
        "cpus": os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    try:
        kw = {"concurrency": args.concurrency, "base": base, "sink_seconds": args.sink_ms / 1000}
        figures |= run("one_worker", messages=args.messages, workers=1, **kw)
        figures |= run("two_workers", messages=args.messages, workers=2, **kw)
        figures |= run("burst_two_workers", messages=args.burst, workers=2, **kw)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    figures["load_average_at_end"] = round(os.getloadavg()[0], 2)
    figures["runtime_seconds"] = round(time.monotonic() - started)
    one, two = figures["one_worker_per_second"], figures["two_workers_per_second"]
    figures["second_worker_gain"] = round(two / one - 1, 2) if one else None
    figures["second_worker_gain_met"] = bool(one) and two >= 1.7 * one
    figures["two_worker_p99_lag_met"] = figures["burst_two_workers_lag_p99_s"] < 10.0
    emit(figures)


if __name__ == "__main__":
    main()
