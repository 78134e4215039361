"""The offer e-mail, and the page its link opens, give the answer-by time in the expert's own
zone, named beside it."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.models import Assignment
from tests.conftest import Clock
from tests.factories import create_expert, drain, submit
from tests.mail_reader import messages, text_of

INSTANT = dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)


def test_an_offer_to_an_expert_in_bishkek_says_when_to_answer_in_bishkek_time(
    db: Session, client: TestClient, mail_dir: Path, clock: Clock
) -> None:
    clock.at(INSTANT)
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    accounts.update_settings(db, expert, timezone="Asia/Bishkek")
    req = submit(db)
    a = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert a is not None and a.expert_id == expert.id
    drain(db)
    (offer,) = messages(mail_dir, to=expert.email)
    text = text_of(offer)
    local = a.respond_by.astimezone(zoneinfo.ZoneInfo("Asia/Bishkek"))
    assert local.hour == (a.respond_by.hour + 6) % 24
    shown = f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} (Bishkek time)"
    assert shown in " ".join(text.split())
    assert f"{a.respond_by:%H:%M} UTC" not in text
    link = re.search(r"/experts/offers/\S+", text)
    assert link is not None
    page = client.get(link.group(0))
    assert page.status_code == 200, page.text
    assert shown in " ".join(re.sub(r"<[^>]+>", "", page.text).split())
