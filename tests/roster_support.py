"""Helpers for the roster, escalation-chain and report tests."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from app.core.time import now
from app.models import DutyLevel, OverrideKind, RosterOverride, RosterShift, User
from tests.conftest import Clock
from tests.experts_support import mails
from tests.outbox_helpers import drain


def set_time(clock: Clock, when: dt.datetime) -> None:
    """Move the controlled clock so that ``now()`` is ``when`` (plus the test's run time)."""
    clock.at(when)


def shift(
    db: Session,
    user: User,
    weekday: int,
    start: str,
    end: str,
    *,
    tz: str = "UTC",
    level: DutyLevel = DutyLevel.member,
) -> RosterShift:
    row = RosterShift(
        user_id=user.id,
        timezone=tz,
        weekday=weekday,
        starts_local=dt.time.fromisoformat(start),
        ends_local=dt.time.fromisoformat(end),
        level=level,
    )
    db.add(row)
    db.flush()
    return row


def around_the_clock(db: Session, user: User, *, level: DutyLevel = DutyLevel.member) -> None:
    for day in range(7):
        shift(db, user, day, "00:00", "00:00", level=level)


def override(
    db: Session,
    user: User,
    kind: OverrideKind,
    starts: dt.datetime,
    ends: dt.datetime,
    *,
    level: DutyLevel = DutyLevel.member,
) -> RosterOverride:
    row = RosterOverride(
        user_id=user.id,
        kind=kind,
        starts_at=starts,
        ends_at=ends,
        level=level,
        created_at=now(),
    )
    db.add(row)
    db.flush()
    return row


def drain_all(db: Session) -> int:
    total = 0
    for _ in range(10):
        n = drain(db)
        total += n
        if n == 0:
            return total
    raise AssertionError("the outbox never settled")


def take(mail_dir: Path, prefix: str = "") -> list[tuple[str, str, str]]:
    """E-mails written since the last call whose subject starts with ``prefix``; the folder is
    emptied."""
    found = [m for m in mails(mail_dir) if m[1].startswith(prefix)]
    for p in mail_dir.glob("*.eml"):
        p.unlink()
    return found


def recipients(found: list[tuple[str, str, str]]) -> set[str]:
    return {to for to, _, _ in found}


ACK_LINK = re.compile(r"https?://[^\s\"<>]+/escalations/ack/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def ack_token(body: str) -> str:
    match = ACK_LINK.search(body)
    assert match, "no acknowledgement link in the e-mail"
    return match.group(1)


def uid(user: User) -> uuid.UUID:
    return user.id
