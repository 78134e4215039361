"""The admin's test e-mail says when the worker sent it in the admin's own zone, named; sent
to an address the admin typed (nobody we know), in UTC, named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.models import Role
from app.notifications.service import request_test_email
from tests.conftest import Clock
from tests.factories import create_user, drain
from tests.mail_reader import messages, text_of

INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)


def test_the_test_e_mail_to_an_admin_in_bishkek_gives_bishkek_time(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    admin = create_user(db, role=Role.admin)
    accounts.update_settings(db, admin, timezone="Asia/Bishkek")
    request_test_email(db, admin=admin, to=None)
    drain(db)
    (mail,) = messages(mail_dir, to=admin.email)
    assert "Sent by the worker at Sun 28 Mar 2027, 06:30:" in text_of(mail)
    assert "(Asia/Bishkek, UTC+06:00) through" in text_of(mail)


def test_the_test_e_mail_to_a_typed_address_gives_utc_named(
    db: Session, clock: Clock, mail_dir: Path
) -> None:
    clock.at(INSTANT)
    admin = create_user(db, role=Role.admin)
    accounts.update_settings(db, admin, timezone="Asia/Bishkek")
    request_test_email(db, admin=admin, to="check@example.org")
    drain(db)
    (mail,) = messages(mail_dir, to="check@example.org")
    assert "Sent by the worker at Sun 28 Mar 2027, 00:30:" in text_of(mail)
    assert "(UTC, UTC+00:00) through" in text_of(mail)
