"""The roster's e-mails (the escalation chain, the alert about a region nobody covers, the
daily gap e-mail) show their times in each recipient's own zone, named beside them; each
recipient has an e-mail of their own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.flows import request as flows
from app.models import Role, User
from app.roster import alerts
from app.sla import scheduling
from tests.conftest import Clock
from tests.factories import (
    around_the_clock,
    create_user,
    drain_all,
    make_request,
    named_time,
    shift,
)
from tests.mail_reader import Mail, recipients, take

INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)  # 06:30 in Bishkek


def _admin_in(db: Session, zone: str) -> User:
    admin = create_user(db, role=Role.admin)
    accounts.update_settings(db, admin, timezone=zone)
    return admin


def _body_to(found: list[Mail], user: User) -> str:
    (body,) = [b for to, _, b in found if to == user.email]
    return " ".join(body.split())


def test_escalation_e_mails_show_received_and_due_in_each_supervisors_zone(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    # An empty roster and no region lead: level 1 has nobody, level 2 is every active admin.
    bishkek, in_utc = _admin_in(db, "Asia/Bishkek"), _admin_in(db, "UTC")
    req = make_request(db, country="CN", region="east_asia")
    scheduling.schedule(db, req)
    clock.advance(minutes=61)
    drain_all(db)
    found = take(mail_dir, "Breached:")
    assert {bishkek.email, in_utc.email} <= recipients(found)
    mine, theirs = _body_to(found, bishkek), _body_to(found, in_utc)
    for instant in (req.received_at, req.first_response_due_at):
        assert named_time(instant, "Asia/Bishkek") in mine
        assert named_time(instant, "UTC") not in mine
        assert named_time(instant, "UTC") in theirs
    assert "Sunday 28 March 2027 at 07:30 (Bishkek time)" in mine  # due: received + 1 h


def test_the_uncovered_region_alert_shows_the_due_time_in_each_supervisors_zone(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    around_the_clock(db, create_user(db, role=Role.staff))  # a roster, with no duty lead
    bishkek, in_utc = _admin_in(db, "Asia/Bishkek"), _admin_in(db, "UTC")
    take(mail_dir)
    req = make_request(db, country="CN", region="east_asia")
    flows.submitted(db, req)
    drain_all(db)
    found = take(mail_dir, "Nobody on duty")
    assert {bishkek.email, in_utc.email} <= recipients(found)
    due = req.first_response_due_at
    assert named_time(due, "Asia/Bishkek") in _body_to(found, bishkek)
    assert named_time(due, "UTC") not in _body_to(found, bishkek)
    assert named_time(due, "UTC") in _body_to(found, in_utc)


def test_the_gap_e_mail_shows_gaps_and_its_check_in_each_admins_zone(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    bishkek, in_utc = _admin_in(db, "Asia/Bishkek"), _admin_in(db, "UTC")
    shift(db, create_user(db, role=Role.staff), 0, "08:00", "16:00")  # Mondays, UTC
    alerts.queue_gap_notices(db)
    drain_all(db)
    found = take(mail_dir, "Duty roster:")
    mine, theirs = _body_to(found, bishkek), _body_to(found, in_utc)
    # No staff from now to Monday 08:00 UTC: both ends dated, the zone named once.
    assert (
        "Sun 28 Mar 2027, 06:30 to Mon 29 Mar 2027, 14:00 (Asia/Bishkek, UTC+06:00): "
        "no staff on duty" in mine
    )
    assert f"(checked {named_time(INSTANT, 'Asia/Bishkek')})" in mine
    assert (
        "Sun 28 Mar 2027, 00:30 to Mon 29 Mar 2027, 08:00 (UTC, UTC+00:00): no staff on duty"
        in theirs
    )
    assert f"(checked {named_time(INSTANT, 'UTC')})" in theirs
    assert "Asia/Bishkek" not in theirs


def test_a_gap_across_a_clock_change_names_each_end_with_its_own_offset(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(dt.datetime(2027, 3, 27, 20, 0, tzinfo=dt.UTC))  # Berlin moves to UTC+2 at 01:00Z
    berlin = _admin_in(db, "Europe/Berlin")
    shift(db, create_user(db, role=Role.staff), 0, "08:00", "16:00")  # Mondays, UTC
    alerts.queue_gap_notices(db)
    drain_all(db)
    body = _body_to(take(mail_dir, "Duty roster:"), berlin)
    assert (
        "Sat 27 Mar 2027, 21:00 (Europe/Berlin, UTC+01:00) to "
        "Mon 29 Mar 2027, 10:00 (Europe/Berlin, UTC+02:00): no staff on duty" in body
    )


def test_a_gap_within_one_local_day_gives_the_end_as_a_time(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(dt.datetime(2027, 3, 29, 5, 0, tzinfo=dt.UTC))  # Monday 11:00 in Bishkek
    bishkek = _admin_in(db, "Asia/Bishkek")
    shift(db, create_user(db, role=Role.staff), 0, "08:00", "16:00")  # Mondays, UTC
    alerts.queue_gap_notices(db)
    drain_all(db)
    body = _body_to(take(mail_dir, "Duty roster:"), bishkek)
    assert "Mon 29 Mar 2027, 11:00 to 14:00 (Asia/Bishkek, UTC+06:00): no staff on duty" in body
