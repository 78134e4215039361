"""A consultation's e-mail to the expert shows its time in the expert's own zone (their
setting), even when their weekly hours were saved in another zone."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from tests.factories import at, bearer, day_in, drain, expert_with_hours, iso, submit
from tests.mail_reader import messages, text_of

LONDON = "Europe/London"


def test_the_booking_e_mail_to_the_expert_is_in_their_own_zone(
    client: TestClient, db: Session, mail_dir: Path
) -> None:
    expert = expert_with_hours(db, zone=LONDON)  # hours 09:00-12:00 London
    accounts.update_settings(db, expert, timezone="Asia/Bishkek")
    sub = submit(client, full_name="Zqxzone Applicant", timezone=LONDON)
    start = at(day_in(LONDON, 3), "10:00", LONDON)
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": iso(start)},
        headers=bearer(sub["access_token"]),
    )
    assert resp.status_code == 201, resp.text
    drain(db)
    (mail,) = [m for m in messages(mail_dir, to=expert.email) if "Consultation" in m["Subject"]]
    text = " ".join(text_of(mail).split())
    local = start.astimezone(zoneinfo.ZoneInfo("Asia/Bishkek"))
    assert f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M}" in text
    assert "(Bishkek time)" in text
    assert f"{local:%Y-%m-%d %H:%M}" not in text  # no machine time
