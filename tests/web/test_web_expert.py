"""The expert's pages: own assignments (accept, decline), own case (404 for anyone else's),
consultations with the fresh host link, availability and absences, notifications."""

from __future__ import annotations

import datetime as dt
import secrets

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import (
    Assignment,
    AssignmentStatus,
    Consultation,
    ConsultationStatus,
    ExpertAvailability,
    ExpertNotification,
    IntakeRequest,
    RequestContact,
    Role,
    UnavailablePeriod,
    User,
)
from tests.factories import (
    MARKER,
    add_absence,
    create_expert,
    create_user,
    csrf,
    field_error,
    sign_in,
    signed_in,
    submit,
)


def offer_of(db: Session, req: IntakeRequest, expert: User) -> Assignment:
    a = db.scalar(
        select(Assignment).where(Assignment.request_id == req.id, Assignment.expert_id == expert.id)
    )
    assert a is not None, "routing offered the request to the expert"
    return a


def test_expert_accepts_an_offer_and_then_sees_the_persons_details(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"], name="Dr Own")
    req = submit(db)
    a = offer_of(db, req, expert)
    signed_in(web, expert)
    listing = web.get("/expert/assignments")
    assert listing.status_code == 200
    assert req.reference in listing.text and "Offered to me" in listing.text
    before = web.get(f"/expert/cases/{req.reference}")
    assert before.status_code == 200
    assert MARKER not in before.text  # no name or summary before accepting
    resp = web.post(
        f"/expert/assignments/{a.id}/accept",
        data=csrf(web, "/expert/assignments"),
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/expert/cases/{req.reference}?done=accepted"
    after = web.get(resp.headers["location"])
    assert f"Aigul {MARKER} Applicant" in after.text
    assert f"Summary with {MARKER} inside it." in after.text
    assert "You accepted the request." in after.text
    db.refresh(a)
    assert a.status == AssignmentStatus.accepted
    # The accepted expert logs a contact: it stops the clock.
    contact = web.post(
        f"/expert/cases/{req.reference}/contact",
        data={**csrf(web, f"/expert/cases/{req.reference}"), "channel": "whatsapp"},
        follow_redirects=False,
    )
    assert contact.status_code == 303
    assert db.scalar(select(RequestContact).where(RequestContact.request_id == req.id))
    noted = web.post(
        f"/expert/cases/{req.reference}/notes",
        data={**csrf(web, f"/expert/cases/{req.reference}"), "body": "Spoke Russian, calm."},
        follow_redirects=False,
    )
    assert noted.status_code == 303
    assert "Spoke Russian, calm." in web.get(noted.headers["location"]).text
    again = web.post(f"/expert/assignments/{a.id}/decline", data=csrf(web, "/expert/assignments"))
    assert again.status_code == 409
    assert "can no longer be answered" in field_error(again.text, f"a{a.id}")


def test_expert_declines_with_a_reason(web: TestClient, db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    req = submit(db)
    a = offer_of(db, req, expert)
    signed_in(web, expert)
    resp = web.post(
        f"/expert/assignments/{a.id}/decline",
        data={**csrf(web, "/expert/assignments"), "reason": "no_capacity"},
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/expert/assignments?done=declined"
    db.refresh(a)
    assert a.status == AssignmentStatus.declined
    assert web.get(f"/expert/cases/{req.reference}").status_code == 404


def test_an_expert_never_sees_another_experts_case(web: TestClient, db: Session) -> None:
    owner = create_expert(db, countries=["KG"], name="Dr Owner")
    other = create_expert(db, countries=["SY"], name="Dr Other")
    req = submit(db)
    a = offer_of(db, req, owner)
    signed_in(web, other)
    listing = web.get("/expert/assignments").text
    assert req.reference not in listing
    page = web.get(f"/expert/cases/{req.reference}")
    assert page.status_code == 404
    assert MARKER not in page.text and req.reference not in page.text
    assert web.get("/expert/cases/ZZZ-ZZZ-ZZ").status_code == 404  # the same as none at all
    token = csrf(web, "/expert/assignments")
    stolen = web.post(f"/expert/assignments/{a.id}/accept", data=token)
    assert stolen.status_code == 404
    contact = web.post(f"/expert/cases/{req.reference}/contact", data={**token, "channel": "phone"})
    assert contact.status_code == 404
    db.refresh(a)
    assert a.status == AssignmentStatus.offered


def test_staff_and_admins_get_403_on_expert_pages(web: TestClient, db: Session) -> None:
    for role in (Role.staff, Role.admin):
        signed_in(web, create_user(db, role=role))
        assert web.get("/expert/assignments").status_code == 403
        assert web.get("/expert/availability").status_code == 403
        web.cookies.clear()


def test_expert_pages_without_a_session_redirect_to_sign_in(web: TestClient) -> None:
    resp = web.get("/expert/notifications", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/sign-in?next=/expert/notifications"


def _consultation(
    db: Session, req: IntakeRequest, expert: User, hours: int = 3, **kw: object
) -> Consultation:
    start = now() + dt.timedelta(hours=hours)
    c = Consultation(
        request_id=req.id,
        expert_id=expert.id,
        start_at=start,
        end_at=start + dt.timedelta(minutes=60),
        blocked_from=start,
        blocked_until=start + dt.timedelta(minutes=60),
        status=ConsultationStatus.booked,
        ical_uid=f"{secrets.token_hex(8)}@test",
        created_by="requester",
        **kw,
    )
    db.add(c)
    db.flush()
    return c


def test_my_consultations_with_a_fresh_host_link_and_nobody_elses(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"])
    other = create_expert(db, countries=["KG"])
    req = submit(db)
    url = "https://meet.example.org/host-room-123"
    mine = _consultation(
        db, req, expert, meeting_provider="link", meeting_external_id=url, meeting_join_url=url
    )
    pending = _consultation(db, submit(db), expert, hours=6)
    signed_in(web, expert)
    listing = web.get("/expert/consultations")
    assert listing.status_code == 200
    assert req.reference in listing.text
    assert f"/expert/consultations/{mine.id}/host" in listing.text
    host = web.get(f"/expert/consultations/{mine.id}/host")
    assert host.status_code == 200
    assert f'href="{url}"' in host.text
    assert host.headers["cache-control"] == "no-store"
    follows = web.get(f"/expert/consultations/{pending.id}/host")
    assert follows.status_code == 409
    assert "the link follows" in follows.text
    web.cookies.clear()
    signed_in(web, other)
    assert req.reference not in web.get("/expert/consultations").text
    assert web.get(f"/expert/consultations/{mine.id}/host").status_code == 404


def test_expert_edits_weekly_hours_and_a_bad_range_shows_next_to_its_day(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"])
    signed_in(web, expert)
    token = csrf(web, "/expert/availability")
    form = {
        **token,
        "timezone": "Europe/London",
        "day0": "09:00-12:00, 14:00-17:30",
        "day2": "10:00-11:00",
        "slot_minutes": "45",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "15",
        "min_notice_minutes": "120",
        "horizon_days": "30",
    }
    resp = web.post("/expert/availability", data=form, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    row = db.get(ExpertAvailability, expert.id, populate_existing=True)
    assert row is not None
    assert {(r["weekday"], r["start"], r["end"]) for r in row.weekly} == {
        (0, "09:00", "12:00"),
        (0, "14:00", "17:30"),
        (2, "10:00", "11:00"),
    }
    assert row.buffer_after_minutes == 15
    page = web.get("/expert/availability").text
    assert 'value="09:00-12:00, 14:00-17:30"' in page
    bad = web.post("/expert/availability", data={**form, "day4": "9 to 5", "slot_minutes": "2"})
    assert bad.status_code == 422
    assert "09:00-12:00" in field_error(bad.text, "day4")
    bad_time = web.post("/expert/availability", data={**form, "day4": "25:00-26:00"})
    assert bad_time.status_code == 422
    assert field_error(bad_time.text, "day4")
    db.refresh(row)
    assert len(row.weekly) == 3  # nothing changed by the refused forms


def test_expert_adds_and_removes_an_absence_but_not_someone_elses(
    web: TestClient, db: Session
) -> None:
    expert = create_expert(db, countries=["KG"])
    other = create_expert(db, countries=["KG"])
    theirs = add_absence(db, other)
    signed_in(web, expert)
    token = csrf(web, "/expert/availability")
    resp = web.post(
        "/expert/availability/absences",
        data={
            **token,
            "starts_at": "2030-01-10T09:00",
            "ends_at": "2030-01-12T18:00",
            "kind": "leave",
            "note": "conference",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    period = db.scalar(select(UnavailablePeriod).where(UnavailablePeriod.expert_id == expert.id))
    assert period is not None
    assert period.starts_at == dt.datetime(2030, 1, 10, 9, 0, tzinfo=dt.UTC)  # London in winter
    backwards = web.post(
        "/expert/availability/absences",
        data={
            **token,
            "starts_at": "2030-01-12T09:00",
            "ends_at": "2030-01-10T09:00",
            "kind": "leave",
        },
    )
    assert backwards.status_code == 422
    assert "after" in backwards.text
    assert (
        web.post(f"/expert/availability/absences/{theirs.id}/delete", data=token).status_code == 404
    )
    gone = web.post(
        f"/expert/availability/absences/{period.id}/delete", data=token, follow_redirects=False
    )
    assert gone.status_code == 303
    assert db.get(UnavailablePeriod, period.id, populate_existing=True) is None
    assert db.get(UnavailablePeriod, theirs.id) is not None


def test_notifications_list_and_mark_read(web: TestClient, db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    req = submit(db)
    note = db.scalar(select(ExpertNotification).where(ExpertNotification.expert_id == expert.id))
    assert note is not None
    signed_in(web, expert)
    page = web.get("/expert/notifications")
    assert "A request was offered to you" in page.text and req.reference in page.text
    assert MARKER not in page.text
    resp = web.post(
        f"/expert/notifications/{note.id}/read",
        data=csrf(web, "/expert/notifications"),
        follow_redirects=False,
    )
    assert resp.status_code == 303
    db.refresh(note)
    assert note.read_at is not None


def test_an_expert_gets_404_for_another_experts_notification(web: TestClient, db: Session) -> None:
    owner = create_expert(db, countries=["KG"])
    submit(db)
    note = db.scalar(select(ExpertNotification).where(ExpertNotification.expert_id == owner.id))
    assert note is not None
    intruder = create_expert(db, countries=["SY"])
    resp = sign_in(web, intruder)
    assert resp.status_code == 303
    token = csrf(web, "/expert/notifications")
    assert web.post(f"/expert/notifications/{note.id}/read", data=token).status_code == 404
    db.refresh(note)
    assert note.read_at is None
