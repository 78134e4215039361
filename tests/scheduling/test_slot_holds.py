"""Holding a chosen time while its requester confirms (``app/scheduling/service/holds.py``):
a hold hides the time from everyone else but not from its own request, expires at
``expires_at`` exactly (the engine's ``hold_live``), a confirm after that is refused with a
clear message and the time is offered again, a new choice replaces the old hold, and a confirm
books with the held expert or moves the booked consultation."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import Consultation, ConsultationStatus, IntakeRequest, SlotHold, User
from app.scheduling import service, slots
from app.scheduling.errors import HoldExpired, HoldNotFound, SlotTaken
from app.scheduling.service import holds, listing
from tests.factories import at, day_in, expert_with_hours, make_request

ZONE = "Europe/London"
REQUESTER = service.Caller("requester")


@pytest.fixture
def expert(db: Session) -> User:
    return expert_with_hours(db, zone=ZONE, min_notice_minutes=0)


def _request(db: Session, expert: User) -> IntakeRequest:
    req = make_request(db)
    req.assigned_expert_id = expert.id
    req.timezone = ZONE
    db.flush()
    return req


def _offered(db: Session, req: IntakeRequest, day: dt.date) -> list[dt.datetime]:
    found = service.list_slots(
        db, req, from_raw=day.isoformat(), to_raw=day.isoformat(), timezone_raw=ZONE
    )
    return [dt.datetime.fromisoformat(s.start_utc) for d in found.days for s in d.slots]


def _frozen(monkeypatch: pytest.MonkeyPatch, instant: dt.datetime) -> None:
    """The holds' and the listing's clock stands at ``instant`` (to the microsecond)."""
    fixed: Callable[[], dt.datetime] = lambda: instant  # noqa: E731
    monkeypatch.setattr(holds, "now", fixed)
    monkeypatch.setattr(listing, "now", fixed)


# The engine's rule ----------------------------------------------------------------------------


def test_a_hold_is_live_until_its_expiry_and_not_at_it() -> None:
    start = dt.datetime(2027, 3, 29, 9, 0, tzinfo=dt.UTC)
    expires = dt.datetime(2027, 3, 28, 0, 35, tzinfo=dt.UTC)
    h = slots.Hold(start, start + dt.timedelta(hours=1), expires)
    tick = dt.timedelta(microseconds=1)
    assert slots.held([h], expires - tick) == [slots.Booking(h.start, h.end)]
    assert slots.held([h], expires) == []
    assert slots.held([h], expires + tick) == []
    with pytest.raises(ValueError, match="aware"):
        slots.Hold(start, start + dt.timedelta(hours=1), expires.replace(tzinfo=None))


# Hiding ---------------------------------------------------------------------------------------


def test_a_hold_hides_the_time_from_others_but_not_from_its_own_request(
    db: Session, expert: User
) -> None:
    a, b = _request(db, expert), _request(db, expert)
    day = day_in(ZONE, 2)
    start = at(day, "10:00", ZONE)
    row = holds.hold(db, a, start=start, zone=ZONE, caller=REQUESTER)
    minutes = get_settings().slot_hold_minutes
    assert row.expert_id == expert.id and row.start_at == start
    assert row.end_at - row.start_at == dt.timedelta(minutes=60)
    assert row.expires_at - row.created_at == dt.timedelta(minutes=minutes)
    assert start in _offered(db, a, day)
    assert start not in _offered(db, b, day)
    assert at(day, "11:00", ZONE) in _offered(db, b, day)  # only the held hour goes
    # B can neither hold nor book it while A's hold is live.
    with pytest.raises(SlotTaken) as held:
        holds.hold(db, b, start=start, zone=ZONE, caller=REQUESTER)
    assert held.value.details is not None and held.value.details["reason"] == "conflict"
    with pytest.raises(SlotTaken) as booked:
        service.book(db, b, start=start, zone=ZONE, caller=REQUESTER)
    assert booked.value.details is not None and booked.value.details["reason"] == "conflict"
    alternatives = [s["start_utc"] for s in booked.value.details["alternatives"]]
    assert start.isoformat() not in alternatives


def test_a_new_choice_replaces_the_old_hold_and_release_frees_it(db: Session, expert: User) -> None:
    a, b = _request(db, expert), _request(db, expert)
    day = day_in(ZONE, 2)
    first, second = at(day, "09:00", ZONE), at(day, "11:00", ZONE)
    holds.hold(db, a, start=first, zone=ZONE, caller=REQUESTER)
    holds.hold(db, a, start=second, zone=ZONE, caller=REQUESTER)
    count = db.scalar(select(func.count()).select_from(SlotHold).where(SlotHold.request_id == a.id))
    assert count == 1
    offered = _offered(db, b, day)
    assert first in offered and second not in offered
    assert holds.release(db, a) is True
    assert second in _offered(db, b, day)
    assert holds.release(db, a) is False


# Expiry at the boundary -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "shown"), [(dt.timedelta(microseconds=1), False), (dt.timedelta(0), True)]
)
def test_the_time_comes_back_to_others_exactly_when_the_hold_expires(
    db: Session, expert: User, monkeypatch: pytest.MonkeyPatch, before: dt.timedelta, shown: bool
) -> None:
    a, b = _request(db, expert), _request(db, expert)
    day = day_in(ZONE, 2)
    start = at(day, "10:00", ZONE)
    row = holds.hold(db, a, start=start, zone=ZONE, caller=REQUESTER)
    _frozen(monkeypatch, row.expires_at - before)
    assert (start in _offered(db, b, day)) is shown


def test_a_confirm_at_the_expiry_is_refused_with_a_clear_message_and_the_time_offered_again(
    db: Session, expert: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _request(db, expert)
    day = day_in(ZONE, 2)
    start = at(day, "10:00", ZONE)
    row = holds.hold(db, a, start=start, zone=ZONE, caller=REQUESTER)
    _frozen(monkeypatch, row.expires_at)
    with pytest.raises(HoldExpired) as refused:
        holds.confirm(db, a, hold_id=row.id, caller=REQUESTER)
    minutes = get_settings().slot_hold_minutes
    assert str(refused.value) == (
        f"The time was held for you for {minutes} minutes and was not confirmed, so it was "
        "released. Choose it again if it is still free, or another time."
    )
    details = refused.value.details
    assert details is not None and details["reason"] == "hold_expired"
    assert details["still_free"] is True and details["start_utc"] == start.isoformat()
    assert details["alternatives"]
    assert start in _offered(db, a, day)
    assert db.scalar(select(func.count()).select_from(Consultation)) == 0
    # Offered again, to anyone: a fresh hold of the same time succeeds.
    b = _request(db, expert)
    assert start in _offered(db, b, day)
    again = holds.hold(db, b, start=start, zone=ZONE, caller=REQUESTER)
    assert again.request_id == b.id


def test_a_confirm_just_before_the_expiry_books_the_held_time(
    db: Session, expert: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _request(db, expert)
    day = day_in(ZONE, 2)
    start = at(day, "10:00", ZONE)
    row = holds.hold(db, a, start=start, zone=ZONE, caller=REQUESTER)
    _frozen(monkeypatch, row.expires_at - dt.timedelta(microseconds=1))
    c = holds.confirm(db, a, hold_id=row.id, caller=REQUESTER)
    assert c.status == ConsultationStatus.booked and c.start_at == start
    assert c.expert_id == expert.id
    assert db.scalar(select(func.count()).select_from(SlotHold)) == 0
    with pytest.raises(HoldNotFound):  # a second confirm (another tab) finds nothing held
        holds.confirm(db, a, hold_id=row.id, caller=REQUESTER)


def test_a_confirm_needs_the_requests_own_hold(db: Session, expert: User) -> None:
    a, b = _request(db, expert), _request(db, expert)
    start = at(day_in(ZONE, 2), "10:00", ZONE)
    row = holds.hold(db, a, start=start, zone=ZONE, caller=REQUESTER)
    with pytest.raises(HoldNotFound):
        holds.confirm(db, b, hold_id=row.id, caller=REQUESTER)
    with pytest.raises(HoldNotFound):
        holds.confirm(db, a, hold_id=uuid.uuid4(), caller=REQUESTER)


def test_a_hold_and_confirm_move_a_booked_consultation(db: Session, expert: User) -> None:
    a = _request(db, expert)
    day = day_in(ZONE, 2)
    booked = service.book(db, a, start=at(day, "09:00", ZONE), zone=ZONE, caller=REQUESTER)
    row = holds.hold(db, a, start=at(day, "11:00", ZONE), zone=ZONE, caller=REQUESTER)
    moved = holds.confirm(db, a, hold_id=row.id, caller=REQUESTER)
    assert moved.id == booked.id and moved.start_at == at(day, "11:00", ZONE)
    assert moved.ical_sequence == 1
