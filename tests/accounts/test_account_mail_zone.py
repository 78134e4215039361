"""The invite and password-reset e-mails say when their link expires in the person's own zone,
named beside it (an invited expert's zone is their profile's)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.models import AccountToken, AccountTokenPurpose, Role, User
from tests.conftest import Clock
from tests.factories import create_user, drain, named_time
from tests.mail_reader import messages, text_of

INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)


def _expiry(db: Session, user: User, purpose: AccountTokenPurpose) -> dt.datetime:
    row = db.scalar(
        select(AccountToken).where(AccountToken.user_id == user.id, AccountToken.purpose == purpose)
    )
    assert row is not None
    return row.expires_at


def _text_to(mail_dir: Path, user: User) -> str:
    (mail,) = messages(mail_dir, to=user.email)
    return " ".join(text_of(mail).split())


def test_a_password_reset_for_someone_in_bishkek_expires_in_bishkek_time(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    user = create_user(db, role=Role.staff)
    accounts.update_settings(db, user, timezone="Asia/Bishkek")
    accounts.request_password_reset(db, user.email)
    drain(db)
    expires = _expiry(db, user, AccountTokenPurpose.password_reset)
    text = _text_to(mail_dir, user)
    assert f"expires {named_time(expires, 'Asia/Bishkek')}" in text
    assert named_time(expires, "UTC") not in text


def test_an_invite_for_someone_in_utc_expires_in_utc_named(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    user = accounts.invite_user(
        db, email="new-staff@example.org", display_name="New Staff", role=Role.staff
    )
    drain(db)
    expires = _expiry(db, user, AccountTokenPurpose.invite)
    assert f"expires {named_time(expires, 'UTC')}" in _text_to(mail_dir, user)
