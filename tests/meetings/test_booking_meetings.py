"""The meeting of a consultation with a provider that answers later (the fake, which behaves
like Zoom): "link follows" at booking, the link by an updated invite once the meeting exists,
the meeting moved on reschedule and deleted on cancel, also when that happens while the
meeting is being made."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.intake import records as intake
from app.meetings.factory import get_meeting_provider
from app.meetings.fake import FakeMeetingProvider
from app.meetings.providers import MeetingInfo, MeetingSpec
from app.models import Consultation, OutboxMessage
from app.scheduling import service
from app.scheduling.service import MEETING_CREATE, MEETING_DELETE, MEETING_UPDATE, store_meeting
from tests.factories import at, bearer, day_in, drain, expert_with_hours, iso, submit
from tests.mail_reader import clear, event_of, invites, raw_text

LONDON = "Europe/London"


@pytest.fixture
def fake_meetings(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMeetingProvider]:
    monkeypatch.setenv("INTAKE_MEETING_PROVIDER", "fake")
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()
    provider = get_meeting_provider()
    assert isinstance(provider, FakeMeetingProvider)
    yield provider
    monkeypatch.delenv("INTAKE_MEETING_PROVIDER")
    get_settings.cache_clear()
    get_meeting_provider.cache_clear()


def _kinds(db: Session) -> list[str]:
    return list(db.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


def test_link_follows_then_arrives_moves_and_goes(
    client: TestClient, db: Session, mail_dir: Path, fake_meetings: FakeMeetingProvider
) -> None:
    expert_with_hours(db)
    sub = submit(client, timezone=LONDON, full_name="Zqxmeet Person")
    drain(db)
    clear(mail_dir)
    day = day_in(LONDON, 2)
    url = f"/api/v1/requests/{sub['reference']}/consultation"
    resp = client.post(
        url, json={"start": iso(at(day, "09:00", LONDON))}, headers=bearer(sub["access_token"])
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["join_url"] is None and resp.json()["meeting_link"] == "follows"
    assert MEETING_CREATE in _kinds(db)

    drain(db)  # creates the meeting, sends the confirmations
    drain(db)  # the invites that carry the link
    c = db.scalar(select(Consultation).execution_options(populate_existing=True))
    assert c is not None and c.meeting_provider == "fake"
    meeting = fake_meetings.meetings[int(c.meeting_external_id or 0)]
    assert meeting.spec.start == at(day, "09:00", LONDON)
    assert meeting.spec.duration_minutes == 60
    assert "Zqxmeet" not in meeting.spec.topic + meeting.spec.agenda
    assert c.meeting_password_enc is not None and meeting.info.password is not None
    assert meeting.info.password.encode() not in c.meeting_password_enc  # stored encrypted
    assert c.ical_sequence == 1
    got = client.get(url, headers=bearer(sub["access_token"])).json()
    assert got["join_url"] == meeting.info.join_url and got["meeting_link"] == "ready"
    latest = [(m, cal) for m, cal, _ in invites(mail_dir) if int(event_of(cal)["SEQUENCE"]) == 1]
    assert len(latest) >= 2
    for m, cal in latest:
        assert str(event_of(cal)["LOCATION"]) == meeting.info.join_url
        if str(m["To"]).startswith("applicant-"):
            assert meeting.info.password in raw_text(m)

    resp = client.patch(
        url, json={"start": iso(at(day, "11:00", LONDON))}, headers=bearer(sub["access_token"])
    )
    assert resp.status_code == 200
    assert MEETING_UPDATE in _kinds(db)
    drain(db)
    assert meeting.updates and meeting.updates[-1].start == at(day, "11:00", LONDON)

    assert client.delete(url, headers=bearer(sub["access_token"])).status_code == 200
    assert MEETING_DELETE in _kinds(db)
    drain(db)
    assert int(c.meeting_external_id or 0) in fake_meetings.deleted
    assert meeting.spec.start - at(day, "09:00", LONDON) == dt.timedelta(hours=2)


@pytest.mark.parametrize(
    "meanwhile", ["cancelled", "rescheduled", "stored_by_another_attempt", "another_stored"]
)
def test_what_changed_while_the_meeting_was_being_made_wins(
    client: TestClient,
    db: Session,
    fake_meetings: FakeMeetingProvider,
    monkeypatch: pytest.MonkeyPatch,
    meanwhile: str,
) -> None:
    """The create holds no lock while the provider works, so a person may act meanwhile:
    cancelled, the new meeting is deleted; rescheduled, it is moved; stored already by another
    attempt of the same row (a lease that ran out), it is kept; another meeting stored, this
    one is deleted."""
    expert_with_hours(db)
    sub = submit(client, timezone=LONDON)
    drain(db)
    day = day_in(LONDON, 2)
    url = f"/api/v1/requests/{sub['reference']}/consultation"
    headers = bearer(sub["access_token"])
    resp = client.post(url, json={"start": iso(at(day, "09:00", LONDON))}, headers=headers)
    assert resp.status_code == 201, resp.text
    req = intake.get_by_reference(db, sub["reference"])
    assert req is not None
    caller = service.Caller("requester")
    make = fake_meetings.create
    made: list[int] = []

    def create(spec: MeetingSpec) -> MeetingInfo:
        info = make(spec)
        made.append(int(info.external_id))
        # What another transaction commits while the provider is being called.
        if meanwhile == "cancelled":
            service.cancel(db, req, caller=caller)
        elif meanwhile == "rescheduled":
            service.reschedule(db, req, start=at(day, "11:00", LONDON), zone=None, caller=caller)
        else:
            c = db.scalar(select(Consultation))
            assert c is not None
            store_meeting(c, info if meanwhile == "stored_by_another_attempt" else make(spec))
            db.flush()
        return info

    monkeypatch.setattr(fake_meetings, "create", create)
    drain(db)
    c = db.scalar(select(Consultation).execution_options(populate_existing=True))
    assert c is not None and len(made) == 1
    deletes = [
        row.params["external_id"]
        for row in db.scalars(select(OutboxMessage).where(OutboxMessage.kind == MEETING_DELETE))
    ]
    drain(db)
    if meanwhile in ("cancelled", "another_stored"):
        assert deletes == [str(made[0])] and made[0] in fake_meetings.deleted
        assert c.meeting_external_id != str(made[0])
    else:
        assert deletes == [] and c.meeting_external_id == str(made[0])
        assert made[0] in fake_meetings.meetings
    if meanwhile == "rescheduled":
        assert fake_meetings.meetings[made[0]].spec.start == at(day, "11:00", LONDON)
