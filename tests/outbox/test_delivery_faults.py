"""Nothing promised is lost, late or sent twice because a broker, a worker or an SMTP server
failed - proven with real processes: ``asylum-intake worker``/``beat``/``api`` on a fresh
PostgreSQL database, a private ``redis-server`` as the broker, and a real SMTP server (aiosmtpd)
on loopback.

- A worker SIGKILLed (with its prefork children) in the middle of 1,000 due e-mails: after a
  restart every e-mail is delivered, each at least once, and twice at most for the rows sent but
  not yet committed at the moment of the kill (at most ``INTAKE_OUTBOX_COMMIT_EVERY`` per pool
  process).
- Both workers SIGKILLed while one of them is in the middle of sending a reminder (the SMTP
  server holds its DATA) and over 200 rows are claimed: with the production lease and poll,
  fresh workers send every message within a minute of its time, each once, except the messages
  that were mid-transaction at the kill (the server had them): those twice, no others.
- The broker down when a request arrives: the request is accepted (201), its acknowledgement is
  not sent while Redis is down (readiness says 503, naming the broker), and arrives, once, when
  Redis is back on the same port: in the production topology (PostgreSQL, separate api, worker
  and beat processes, and a real SMTP server that counts what it receives). The embedded default's
  outbox delivery is proven by tests/intake/test_intake_e2e.py.
- An SMTP server refusing with 451 (retried with backoff, then dead-lettered), refusing with 550
  (dead-lettered at once: retrying cannot help) or hanging past the timeout (retried, then
  dead-lettered): each is in the staff dead-letter list with its error and an alert row for
  staff, and a staff retry once the server is healthy delivers it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import secrets
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from redis import Redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.core import crypto, database
from app.core.database import build_engine
from app.core.settings import get_settings
from app.core.time import now
from app.intake import service as intake
from app.intake.schemas import SubmitIn
from app.models import OutboxMessage, OutboxStatus, Role
from app.notifications.service import TEST_EMAIL
from app.outbox import service
from app.outbox.service import DEAD_LETTER_ALERT
from app.sla.scheduling import MAIL_KIND, REMINDER_KIND
from tests.conftest import Clock, create_migrated_pg_database, drop_pg_database
from tests.factories import TEST_WORKER, create_user, drain, form
from tests.processes import (
    ManagedProcess,
    RedisServer,
    create_admin,
    free_port,
    sign_in,
    start_api,
    start_beat,
    start_redis,
    start_worker,
    wait_for,
    wait_worker_ready,
)
from tests.smtp_server import GatedInbox, Inbox

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "faults-admin@example.org"
ADMIN_PASSWORD = "a long admin passphrase"


@dataclass
class CountingInbox(Inbox):
    """``Inbox`` that also counts every DATA it answered, refused or not."""

    attempts: int = 0
    refused: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.refuse_with:
            self.refused.append(self.refuse_with)
        return await super().handle_DATA(server, session, envelope)

    def message_ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in list(self.messages))


class SmtpOnPort:
    """A real SMTP server on a port of our choosing, so it can be swapped for a hanging one (and
    back) while the worker keeps the same INTAKE_SMTP_PORT."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = CountingInbox()
        self._controller: Controller | None = None

    def start(self) -> CountingInbox:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self.inbox

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class HangingServer:
    """Accepts TCP connections on ``port`` and never says a word (no SMTP greeting)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted = 0
        self._sock: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if self._thread is not None:
            self._thread.join(5)
        for conn in self._held:
            conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"intake_faults_{secrets.token_hex(4)}"
    url = create_migrated_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    eng = build_engine(pg_url, for_tests=True)
    yield eng
    eng.dispose()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


def _env(
    pg_url: str, redis: RedisServer, smtp_port: int, tmp_path: Path, **extra: str
) -> dict[str, str]:
    return {
        "INTAKE_DATABASE_URL": pg_url,
        "INTAKE_BROKER_URL": redis.url,
        # One var/ (and so one master key) for every process, as a shared volume would be.
        "INTAKE_DATA_DIR": str(tmp_path / "var"),
        "INTAKE_SMTP_HOST": "127.0.0.1",
        "INTAKE_SMTP_PORT": str(smtp_port),
        "INTAKE_SMTP_SECURITY": "none",
        "INTAKE_SMTP_TIMEOUT_SECONDS": "5",
        "INTAKE_OUTBOX_POLL_SECONDS": "0.5",
        **extra,
    }


def _counts(engine: Engine, kind: str = TEST_EMAIL) -> Counter[str]:
    with Session(engine) as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.kind == kind)
            .group_by(OutboxMessage.status)
        ).all()
    return Counter({str(status.value): int(n) for status, n in rows})


def _row(engine: Engine, row_id: int) -> OutboxMessage:
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return row


def _enqueue_test_emails(engine: Engine, count: int) -> list[int]:
    """Due test e-mails written with the outbox service itself (no nudge: beat pumps)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = [
            service.enqueue(session, TEST_EMAIL, {"to": f"load{i % 20}@example.org"})
            for i in range(count)
        ]
        session.commit()
    return [r.id for r in rows if r is not None]


def _wait(predicate: Callable[[], bool], timeout: float, what: str, *procs: ManagedProcess) -> None:
    try:
        wait_for(predicate, timeout=timeout, interval=0.2, what=what)
    except TimeoutError:
        logs = "\n".join(f"--- {p.name}:\n{p.log_tail(40)}" for p in procs)
        raise AssertionError(f"timed out waiting for {what}\n{logs}") from None


#: What a worker logs on each failed attempt to reach the broker.
WORKER_RETRY = "consumer: Cannot connect to"


def _queued(redis: RedisServer) -> int:
    """Messages waiting in the broker's default queue for a worker to take."""
    with Redis.from_url(redis.url) as client:
        return int(client.llen("celery"))


def _kill_group(proc: ManagedProcess) -> None:
    """SIGKILL the worker and its prefork children at once: nothing gets to clean up."""
    proc.children()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.stop()  # reaps it; the group is already gone


def test_worker_killed_mid_backlog_delivers_every_email_after_restart(
    pg_url: str, engine: Engine, redis: RedisServer, tmp_path: Path
) -> None:
    total, batch, commit_every, concurrency = 1000, 25, 5, 2
    smtp = SmtpOnPort(free_port())
    inbox = smtp.start()
    env = _env(
        pg_url,
        redis,
        smtp.port,
        tmp_path,
        INTAKE_OUTBOX_LEASE_SECONDS="5",
        INTAKE_OUTBOX_BATCH_SIZE=str(batch),
        INTAKE_OUTBOX_COMMIT_EVERY=str(commit_every),
    )
    ids = _enqueue_test_emails(engine, total)
    assert len(ids) == total
    worker = beat = second = None
    try:
        worker = start_worker(
            tmp_path / "worker1", env=env, concurrency=concurrency, name="worker1"
        )
        beat = start_beat(tmp_path / "beat", env=env)
        _wait(lambda: _counts(engine)["sent"] >= 300, 90, "300 sent before the kill", worker)
        _kill_group(worker)
        at_kill = _counts(engine)
        print("at the kill:", dict(at_kill), "messages at the server:", len(inbox.messages))
        assert at_kill["sent"] < total, "the backlog was gone before the kill: nothing proven"
        assert at_kill["claimed"] > 0, "no batch was in flight at the kill: nothing proven"
        assert not worker.leftovers()

        # Nothing moves while no worker runs: the claimed rows wait for their lease. Checked
        # once beat has queued pumps for longer than a pool process holds a chunk uncommitted
        # (one a poll, each left in the broker: nobody takes them).
        queued = _queued(redis)
        _wait(lambda: _queued(redis) >= queued + 3, 30, "3 pumps queued after the kill", beat)
        assert _counts(engine)["sent"] == at_kill["sent"]

        second = start_worker(tmp_path / "worker2", env=env, concurrency=2, name="worker2")
        _wait(
            lambda: _counts(engine)["sent"] == total,
            90,
            f"all {total} sent after the restart",
            second,
            beat,
        )
        _wait(lambda: len(inbox.messages) >= total, 10, "the server to have them all")
    finally:
        for proc in (second, beat, worker):
            if proc is not None:
                proc.stop()
        smtp.stop()

    seen = inbox.message_ids()
    expected = {f"<outbox-{i}@localhost>" for i in ids}
    assert set(seen) == expected, "every row reached the server, and nothing else did"
    twice = sorted(msgid for msgid, n in seen.items() if n > 1)
    print(f"{len(twice)} delivered twice (sent, not yet committed at the kill): {twice}")
    assert all(n <= 2 for n in seen.values())
    assert len(twice) <= concurrency * commit_every
    assert _counts(engine) == Counter({"sent": total})


#: Requests submitted while the reminder's e-mail is held: their acknowledgements (and the
#: rows that route them) fill the batches of the three other pool processes.
ACKNOWLEDGED = 110
#: Rows per claim for this test only (3 x 70 + the reminder's: over 200 claimed at the kill);
#: the lease and the poll interval stay the production defaults.
BATCH = 70
#: The promise: a message a crashed worker had claimed goes out within a minute of its time.
PROMISED = dt.timedelta(seconds=60)


def _master_key_text() -> str:
    """This process's master key, for the workers: they read what it encrypted."""
    key = crypto.master_key()
    return f"{key.key_id}:{base64.urlsafe_b64encode(key.key).decode().rstrip('=')}"


def _submit(engine: Engine, count: int) -> None:
    """``count`` requests through the intake service, in one transaction (all due at once)."""
    with Session(engine) as session:
        for _ in range(count):
            intake.submit(session, SubmitIn.model_validate(form(wants=["consultation"])))
        session.commit()


def _drain_due(engine: Engine) -> None:
    """Deliver in this process (mail to files, not to the test's SMTP server) what is due."""
    with Session(engine) as session:
        while drain(session):
            pass


def _outbox_id(message_id: str) -> int:
    return int(message_id.strip("<>").split("@", 1)[0].removeprefix("outbox-"))


def _unfinished(engine: Engine) -> int:
    """Rows due by now that are not sent yet (claimed ones included)."""
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.claimed]),
                    OutboxMessage.due_at <= now(),
                )
            )
            or 0
        )


def test_workers_killed_mid_send_with_200_rows_claimed_still_deliver_each_within_a_minute(
    pg_url: str, engine: Engine, redis: RedisServer, tmp_path: Path, clock: Clock
) -> None:
    """A reminder's SMTP transaction is in flight (the server holds its DATA) and the other
    pool processes hold batches of acknowledgements when both workers are SIGKILLed. Fresh
    workers then send everything: each message within a minute of its time, once - except
    the ones whose DATA the server held at the kill (one per killed pool process), which the
    server had taken and the fresh workers, never told, send again: those exactly twice."""
    assert get_settings().outbox_lease_seconds < PROMISED.total_seconds() / 2
    database.set_engine(engine)  # this process's setup writes to the workers' database
    smtp = GatedInbox()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    procs: list[ManagedProcess] = []
    try:
        # An hour ago: a request arrives; its acknowledgement and routing go (in this process)
        # and its reminders wait. The one active staff user is on duty (no roster).
        with Session(engine) as session:
            create_user(session, role=Role.staff, email="duty@example.org")
            session.commit()
        clock.advance(seconds=-3600)
        _submit(engine, 1)
        _drain_due(engine)
        with Session(engine) as session:
            reminder_due = session.scalar(
                select(func.min(OutboxMessage.due_at)).where(OutboxMessage.kind == REMINDER_KIND)
            )
        assert reminder_due is not None
        clock.advance(seconds=(reminder_due - now()).total_seconds() - 1)
        _drain_due(engine)  # anything due before the reminder, sent here too
        clock.advance(seconds=-600)  # nothing comes due while the workers start

        env = _env(
            pg_url,
            redis,
            controller.port,
            tmp_path,
            INTAKE_OUTBOX_POLL_SECONDS=str(get_settings().outbox_poll_seconds),
            INTAKE_OUTBOX_BATCH_SIZE=str(BATCH),
            INTAKE_SMTP_TIMEOUT_SECONDS="120",  # the held DATA must outlast the test's waits
            INTAKE_MASTER_KEY=_master_key_text(),
        )
        assert "INTAKE_OUTBOX_LEASE_SECONDS" not in env
        for n in (1, 2):
            procs.append(
                start_worker(tmp_path / f"w{n}", env=env, concurrency=2, name=f"w{n}", wait=False)
            )
        procs.append(start_beat(tmp_path / "beat", env=env))
        for proc in procs[:2]:
            wait_worker_ready(proc)
        smtp.close()

        # The reminder comes due; a worker fans it out and starts sending it: held.
        clock.advance(seconds=(reminder_due - now()).total_seconds())
        _wait(
            lambda: any(str(m["Subject"]).startswith("Reminder:") for m in list(smtp.held)),
            60,
            "the reminder's DATA at the server",
            *procs,
        )
        # Then a burst of requests: the other three pool processes claim full batches and
        # each starts sending its first acknowledgement: held too.
        _submit(engine, ACKNOWLEDGED)
        _wait(
            lambda: len(smtp.held) == 4 and _counts_all(engine)["claimed"] >= 200,
            60,
            "four DATA held and 200 rows claimed",
            *procs,
        )
        for proc in procs[:2]:
            _kill_group(proc)
        at_kill = _counts_all(engine)
        in_flight = Counter(str(m["Message-ID"]) for m in smtp.held)
        print("at the kill:", dict(at_kill), "held:", sorted(in_flight))
        assert at_kill["claimed"] >= 200 and set(in_flight.values()) == {1}
        smtp.open()

        for n in (3, 4):
            procs.append(
                start_worker(tmp_path / f"w{n}", env=env, concurrency=2, name=f"w{n}", wait=False)
            )
        for proc in procs[-2:]:
            wait_worker_ready(proc)
        _wait(lambda: _unfinished(engine) == 0, 90, "every due row sent", *procs)
    finally:
        for proc in reversed(procs):
            proc.stop()
        controller.stop()
        database.set_engine(None)

    with Session(engine) as session:
        rows = {r.id: r for r in session.scalars(select(OutboxMessage)).all()}
    due_by = {r.dedup_key: r.due_at for r in rows.values() if r.kind == REMINDER_KIND}
    assert not [r.id for r in rows.values() if r.status == OutboxStatus.dead or r.last_error]

    def its_time(row: OutboxMessage) -> dt.datetime:
        """A reminder e-mail's time is its step's (+30 minutes), not when it was fanned out."""
        if row.kind == MAIL_KIND and row.dedup_key:
            return due_by[row.dedup_key.rsplit(":", 1)[0]]
        return row.due_at

    copies = Counter(msgid for msgid, _ in smtp.arrivals)
    # Every acknowledgement and reminder e-mail the workers had to send arrived...
    mails = {
        r.id
        for r in rows.values()
        if r.kind in (intake.ACK_KIND, MAIL_KIND) and r.claimed_by != TEST_WORKER
    }
    assert len(mails) == ACKNOWLEDGED + 1
    assert mails <= {_outbox_id(msgid) for msgid in copies}
    # ... once, or twice when it was mid-transaction at the kill; nothing else twice.
    assert {msgid: n for msgid, n in copies.items() if n != 1} == dict.fromkeys(in_flight, 2)
    # ... each within a minute of its time, resends included.
    late = {
        msgid: (at - its_time(rows[_outbox_id(msgid)])).total_seconds()
        for msgid, at in smtp.arrivals
        if at - its_time(rows[_outbox_id(msgid)]) > PROMISED
    }
    lags = [(at - its_time(rows[_outbox_id(m)])).total_seconds() for m, at in smtp.arrivals]
    print(f"{len(smtp.arrivals)} copies of {len(copies)} messages; worst lag {max(lags):.1f} s")
    assert not late, f"later than a minute after their time: {late}"


def _counts_all(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return Counter({str(status.value): int(n) for status, n in rows})


def test_request_accepted_while_the_broker_is_down_is_acknowledged_when_it_is_back(
    pg_url: str, engine: Engine, redis: RedisServer, tmp_path: Path
) -> None:
    smtp = SmtpOnPort(free_port())
    inbox = smtp.start()
    env = _env(pg_url, redis, smtp.port, tmp_path)
    procs: list[ManagedProcess] = []
    try:
        worker = start_worker(tmp_path / "worker", env=env)
        procs.append(worker)
        beat = start_beat(tmp_path / "beat", env=env)
        procs.append(beat)
        api = start_api(tmp_path / "api", env=env)
        procs.append(api)
        # Beat has reached the broker (an e-mail queued without a nudge went out: beat pumped):
        # stopped before that, beat would still be retrying its first connection and never get
        # to fail a pump.
        _enqueue_test_emails(engine, 1)
        _wait(lambda: len(inbox.messages) == 1, 30, "an e-mail sent by beat's pump", *procs)

        redis.stop()
        body = form()
        resp = httpx.post(f"{api.url}/api/v1/requests", json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        reference = resp.json()["reference"]
        assert _counts(engine, "intake.ack") == Counter({"pending": 1})
        readiness = httpx.get(f"{api.url}/readyz", timeout=30)
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["broker"]["ok"] is False

        # Beat and the nudge both need the broker: nothing can be sent. Absence only counts once
        # every path had its chance: the nudge failed, beat could not send its pump, and the
        # worker tried the broker again after both.
        _wait(lambda: "nudge_failed" in api.read_log(), 30, "the API's nudge to fail", api)
        _wait(
            lambda: "Couldn't apply scheduled task outbox-pump" in beat.read_log(),
            30,
            "beat's pump to fail",
            beat,
        )
        tries = worker.read_log().count(WORKER_RETRY)
        # Kombu's reconnect backoff grows by 2 s up to 30 s between tries, plus the try itself.
        _wait(
            lambda: worker.read_log().count(WORKER_RETRY) > tries,
            75,
            "the worker to try the broker again",
            worker,
        )
        assert len(inbox.messages) == 1, "nothing but the e-mail from before the broker went down"
        assert _counts(engine, "intake.ack") == Counter({"pending": 1})

        redis.start()  # same port
        _wait(lambda: len(inbox.messages) >= 2, 60, "the acknowledgement", *procs)
        (ack,) = inbox.messages[1:]
        assert ack["To"] == body["email"]
        assert reference in str(ack["Subject"])
        _wait(lambda: _counts(engine, "intake.ack") == Counter({"sent": 1}), 10, "ack sent")
        # Once an e-mail queued after the acknowledgement was sent has arrived, every pump that
        # could have sent the acknowledgement again has run.
        _enqueue_test_emails(engine, 1)
        _wait(lambda: _counts(engine) == Counter({"sent": 2}), 30, "a later e-mail", *procs)
        _wait(lambda: len(inbox.messages) >= 3, 10, "the server to have the later e-mail")
        assert [m["To"] for m in inbox.messages].count(body["email"]) == 1, "acknowledged once"
        for proc in procs:
            assert proc.running(), f"{proc.name} died:\n{proc.log_tail()}"
    finally:
        for proc in reversed(procs):
            proc.stop()
        smtp.stop()


def _dead_letters(base_url: str, headers: dict[str, str]) -> dict[int, dict[str, Any]]:
    resp = httpx.get(f"{base_url}/api/v1/outbox/dead-letters", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    return {item["id"]: item for item in resp.json()["items"]}


def _ask_for_test_email(base_url: str, headers: dict[str, str], to: str) -> int:
    resp = httpx.post(
        f"{base_url}/api/v1/admin/mail/test", json={"to": to}, headers=headers, timeout=10
    )
    assert resp.status_code == 202, resp.text
    return int(resp.json()["outbox_id"])


def _retry(base_url: str, headers: dict[str, str], row_id: int) -> None:
    resp = httpx.post(f"{base_url}/api/v1/outbox/{row_id}/retry", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["attempts"] == 0


def _alerted(engine: Engine, row_id: int) -> bool:
    with Session(engine) as session:
        alerts = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == DEAD_LETTER_ALERT)
        ).all()
    return any(a.params.get("outbox_id") == row_id for a in alerts)


@contextlib.contextmanager
def _fault_stack(
    pg_url: str, redis: RedisServer, tmp_path: Path, smtp_port: int, **extra: str
) -> Iterator[tuple[str, dict[str, str], list[ManagedProcess]]]:
    settings = {
        "INTAKE_OUTBOX_MAX_ATTEMPTS": "3",
        "INTAKE_OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
        "INTAKE_OUTBOX_BACKOFF_MAX_SECONDS": "1",
        "INTAKE_SMTP_TIMEOUT_SECONDS": "1",
    }
    env = _env(pg_url, redis, smtp_port, tmp_path, **{**settings, **extra})
    create_admin(tmp_path, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, env=env)
    procs: list[ManagedProcess] = []
    try:
        procs.append(start_worker(tmp_path / "worker", env=env))
        procs.append(start_beat(tmp_path / "beat", env=env))
        api = start_api(tmp_path / "api", env=env)
        procs.append(api)
        yield api.url, sign_in(api.url, ADMIN_EMAIL, ADMIN_PASSWORD), procs
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_smtp_refusals_retry_or_dead_letter_and_a_staff_retry_delivers(
    pg_url: str, engine: Engine, redis: RedisServer, tmp_path: Path
) -> None:
    smtp = SmtpOnPort(free_port())
    inbox = smtp.start()
    try:
        # The server refuses at once: a timeout as short as the hanging server's test needs
        # would turn a slow answer on a loaded machine into another failure than the refusal.
        stack = _fault_stack(pg_url, redis, tmp_path, smtp.port, INTAKE_SMTP_TIMEOUT_SECONDS="10")
        with stack as (url, headers, procs):
            # 451: temporary. Tried three times with backoff, then dead-lettered.
            inbox.refuse_with = "451 try later"
            busy = _ask_for_test_email(url, headers, "busy@example.org")
            _wait(lambda: _row(engine, busy).status == OutboxStatus.dead, 30, "451 dead", *procs)
            row = _row(engine, busy)
            assert row.attempts == 3
            assert row.last_error is not None and row.last_error.startswith("MailError:")
            assert "451" in row.last_error
            assert inbox.refused.count("451 try later") >= 3  # the attempts reached the server
            listed = _dead_letters(url, headers)[busy]
            assert listed["attempts"] == 3 and "451" in listed["last_error"]
            assert _alerted(engine, busy)

            # 550: permanent. Dead-lettered after the first attempt.
            inbox.refuse_with = "550 no such user"
            nobody = _ask_for_test_email(url, headers, "nobody@example.org")
            _wait(lambda: _row(engine, nobody).status == OutboxStatus.dead, 30, "550", *procs)
            row = _row(engine, nobody)
            assert row.attempts == 1
            assert row.last_error is not None and row.last_error.startswith("MailRefused:")
            assert "550" in _dead_letters(url, headers)[nobody]["last_error"]
            assert _alerted(engine, nobody)

            # The server recovers; staff retry both; each arrives once.
            inbox.refuse_with = None
            assert not {f"<outbox-{i}@localhost>" for i in (busy, nobody)} & set(
                inbox.message_ids()
            )
            for row_id in (busy, nobody):
                _retry(url, headers, row_id)
            _wait(
                lambda: all(_row(engine, i).status == OutboxStatus.sent for i in (busy, nobody)),
                30,
                "retried rows sent",
                *procs,
            )
            seen = inbox.message_ids()
            assert seen[f"<outbox-{busy}@localhost>"] == 1
            assert seen[f"<outbox-{nobody}@localhost>"] == 1
            assert {busy, nobody}.isdisjoint(_dead_letters(url, headers))
    finally:
        smtp.stop()


def test_smtp_hanging_past_the_timeout_retries_then_dead_letters(
    pg_url: str, engine: Engine, redis: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    hanging = HangingServer(port)
    hanging.start()
    smtp = SmtpOnPort(port)
    try:
        with _fault_stack(pg_url, redis, tmp_path, port) as (url, headers, procs):
            started = time.monotonic()
            row_id = _ask_for_test_email(url, headers, "slow@example.org")
            _wait(lambda: _row(engine, row_id).status == OutboxStatus.dead, 45, "dead", *procs)
            row = _row(engine, row_id)
            assert row.attempts == 3
            assert row.last_error is not None and "timed out" in row.last_error
            assert time.monotonic() - started >= 3  # three attempts of (at least) 1 s each
            assert hanging.accepted >= 3
            assert "timed out" in _dead_letters(url, headers)[row_id]["last_error"]
            assert _alerted(engine, row_id)

            hanging.stop()
            inbox = smtp.start()  # a healthy server on the same port
            _retry(url, headers, row_id)
            _wait(lambda: _row(engine, row_id).status == OutboxStatus.sent, 30, "sent", *procs)
            assert inbox.message_ids()[f"<outbox-{row_id}@localhost>"] == 1
    finally:
        hanging.stop()
        smtp.stop()
