"""The first-response reminders and the SLA's own escalation e-mail show the received and due
times in each recipient's own zone, named beside them: staff in Bishkek read Bishkek time,
staff in UTC read UTC, each in their own e-mail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.models import IntakeRequest, Role, User
from app.outbox import service as outbox
from app.sla import scheduling
from tests.conftest import Clock
from tests.factories import create_user, drain_all, make_request, named_time
from tests.mail_reader import Mail, take

INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)  # 06:30 in Bishkek


def _two_staff(db: Session) -> tuple[User, User]:
    """Two active staff users (an empty roster: both on duty), one in Bishkek, one in UTC."""
    bishkek = create_user(db, role=Role.staff)
    accounts.update_settings(db, bishkek, timezone="Asia/Bishkek")
    in_utc = create_user(db, role=Role.staff)
    return bishkek, in_utc


def _body_to(found: list[Mail], user: User) -> str:
    (body,) = [b for to, _, b in found if to == user.email]
    return " ".join(body.split())


def _assert_times_in(body: str, req: IntakeRequest, zone: str, other: str) -> None:
    for instant in (req.received_at, req.first_response_due_at):
        assert named_time(instant, zone) in body
        assert named_time(instant, other) not in body


def test_a_reminder_shows_received_and_due_in_each_recipients_own_zone(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    bishkek, in_utc = _two_staff(db)
    req = make_request(db, country="CN", region="east_asia")  # no expert of the region
    scheduling.schedule(db, req)
    take(mail_dir)
    clock.advance(minutes=31)
    drain_all(db)
    found = take(mail_dir, "Reminder:")
    assert {to for to, _, _ in found} == {bishkek.email, in_utc.email}
    _assert_times_in(_body_to(found, bishkek), req, "Asia/Bishkek", "UTC")
    assert "Sunday 28 March 2027 at 07:30 (Bishkek time)" in _body_to(found, bishkek)
    _assert_times_in(_body_to(found, in_utc), req, "UTC", "Asia/Bishkek")


def test_the_slas_escalation_e_mail_shows_times_in_the_recipients_zone(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    bishkek, in_utc = _two_staff(db)
    req = make_request(db, country="CN", region="east_asia")
    clock.advance(minutes=61)
    for user in (bishkek, in_utc):  # an escalation step's per-person rows, as a fan-out writes
        params = {"request_id": str(req.id), "step": "escalation", "minute": 60}
        outbox.enqueue(db, scheduling.MAIL_KIND, params | {"user_id": str(user.id)})
    drain_all(db)
    found = take(mail_dir, "Breached:")
    _assert_times_in(_body_to(found, bishkek), req, "Asia/Bishkek", "UTC")
    _assert_times_in(_body_to(found, in_utc), req, "UTC", "Asia/Bishkek")
