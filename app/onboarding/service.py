"""The first-run checklist, computed from the database every time (nothing stored): it ticks
itself as the organisation is set up, through pages or the API alike.

Each item is a question about the current state:

- ``experts``: at least one active expert (profile and account both active), and every active
  expert can hold a consultation's meeting (``app.meetings.factory.can_hold_meeting``: on the
  ``link`` provider a personal meeting link, unless ``INTAKE_MEETING_LINK_TEMPLATE`` is set),
  since a booking with one who cannot gets no meeting;
- ``hours``: every active expert has weekly hours (and there is at least one);
- ``samples``: every region with an expert (its active experts or lead) has a sample report
  tagged with it; with no such region, at least one sample report exists;
- ``roster``: the roster has shifts and no gap in the next 7 days (the roster's own gaps: the
  staff and every region covered at every moment);
- ``second_factor``: the admin looking at it has a second factor on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.meetings.factory import can_hold_meeting
from app.models import Document, ExpertProfile, Role, User
from app.models.documents import DocumentKind
from app.models.scheduling import ExpertAvailability
from app.roster import service as roster

ROSTER_DAYS = 7
ITEMS = ("experts", "hours", "samples", "roster", "second_factor")


@dataclass(frozen=True)
class Checklist:
    done: dict[str, bool]
    # Regions with an expert but no sample report of their own (for the page to name them).
    regions_without_sample: tuple[str, ...] = ()
    # How many active experts have no weekly hours yet.
    experts_without_hours: int = 0
    # How many active experts have no way to hold a consultation's meeting.
    experts_without_meeting: int = 0
    # Who is missing from the roster somewhere in the next days: "staff" and/or region codes.
    roster_uncovered: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return all(self.done.values())


def _active_experts(session: Session) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(ExpertProfile.user_id)
            .join(User, User.id == ExpertProfile.user_id)
            .where(ExpertProfile.is_active.is_(True), User.is_active.is_(True))
        ).all()
    )


def _without_meeting(session: Session, experts: list[uuid.UUID]) -> int:
    if not experts:
        return 0
    links = session.scalars(
        select(ExpertProfile.personal_meeting_link).where(ExpertProfile.user_id.in_(experts))
    ).all()
    return len([link for link in links if not can_hold_meeting(link)])


def _without_hours(session: Session, experts: list[uuid.UUID]) -> int:
    if not experts:
        return 0
    weekly: dict[uuid.UUID, list[dict[str, object]]] = dict(
        session.execute(
            select(ExpertAvailability.expert_id, ExpertAvailability.weekly).where(
                ExpertAvailability.expert_id.in_(experts)
            )
        ).all()
    )
    return len([e for e in experts if not weekly.get(e)])


def _regions_without_sample(session: Session) -> tuple[list[str], bool]:
    """(regions with an expert and no sample report tagged with them, any sample report?)"""
    tagged = set(
        session.scalars(
            select(Document.region_code).where(
                Document.kind == DocumentKind.sample_report, Document.region_code.is_not(None)
            )
        ).all()
    )
    any_sample = (
        session.scalar(select(Document.id).where(Document.kind == DocumentKind.sample_report))
        is not None
    )
    missing = [
        code
        for code, members in roster.members_by_region(session).items()
        if members and code not in tagged
    ]
    return missing, any_sample


def checklist(session: Session, admin: User) -> Checklist:
    experts = _active_experts(session)
    without_hours = _without_hours(session, experts)
    without_meeting = _without_meeting(session, experts)
    missing, any_sample = _regions_without_sample(session)
    # The roster's own gaps (the ones its daily notice to admins names): the staff, and every
    # region, covered at every moment of the next days.
    roster_empty = roster.roster_is_empty(session)
    gaps = [] if roster_empty else roster.upcoming_gaps(session, ROSTER_DAYS)
    uncovered = sorted({g.region_code or g.kind for g in gaps})
    return Checklist(
        done={
            "experts": bool(experts) and without_meeting == 0,
            "hours": bool(experts) and without_hours == 0,
            "samples": any_sample and not missing,
            "roster": not roster_empty and not gaps,
            "second_factor": bool(admin.totp_enabled),
        },
        regions_without_sample=tuple(missing),
        experts_without_hours=without_hours,
        experts_without_meeting=without_meeting,
        roster_uncovered=tuple(uncovered),
    )


def needs_setup(session: Session, user: User) -> bool:
    """True for an admin while an item of the checklist is unticked."""
    return user.role == Role.admin and not checklist(session, user).complete
