"""Reading assignments: an expert's desk (their requests, assignments, notifications,
consultations). Staff's view of a request's routing is ``app/routing/queries.py``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.time import now
from app.experts.errors import AssignmentNotFound, CaseNotFound
from app.models import (
    LIVE_ASSIGNMENT,
    Assignment,
    AssignmentStatus,
    Consultation,
    ConsultationStatus,
    ExpertAvailability,
    ExpertNotification,
    ExpertProfile,
    IntakeRequest,
    User,
)
from app.routing import repository


def request_by_reference(session: Session, reference: str) -> IntakeRequest | None:
    ref = reference.strip().upper().replace("-", "").replace(" ", "")
    return session.scalar(select(IntakeRequest).where(IntakeRequest.reference == ref))


def case_assignment(
    session: Session, reference: str, expert: User
) -> tuple[IntakeRequest, Assignment]:
    """The request and this expert's live assignment of it; 404 for anyone not assigned."""
    req = request_by_reference(session, reference)
    if req is None:
        raise CaseNotFound("No such request.")
    a = repository.live_assignment(session, req.id)
    if a is None or a.expert_id != expert.id:
        raise CaseNotFound("No such request.")
    return req, a


def expert_assignments(
    session: Session, expert_id: uuid.UUID, *, live_only: bool = True
) -> Sequence[tuple[Assignment, str]]:
    stmt = (
        select(Assignment, IntakeRequest.reference)
        .join(IntakeRequest, IntakeRequest.id == Assignment.request_id)
        .where(Assignment.expert_id == expert_id)
        .order_by(Assignment.offered_at.desc(), Assignment.id.desc())
    )
    if live_only:
        stmt = stmt.where(Assignment.status.in_(LIVE_ASSIGNMENT))
    return [(a, ref) for a, ref in session.execute(stmt).all()]


def notifications(
    session: Session, expert_id: uuid.UUID, *, unread_only: bool = False, limit: int = 100
) -> Sequence[tuple[ExpertNotification, str | None]]:
    stmt = (
        select(ExpertNotification, IntakeRequest.reference)
        .outerjoin(IntakeRequest, IntakeRequest.id == ExpertNotification.request_id)
        .where(ExpertNotification.expert_id == expert_id)
        .order_by(ExpertNotification.created_at.desc(), ExpertNotification.id.desc())
        .limit(limit)
    )
    if unread_only:
        stmt = stmt.where(ExpertNotification.read_at.is_(None))
    return [(n, ref) for n, ref in session.execute(stmt).all()]


def mark_read(session: Session, expert_id: uuid.UUID, notification_id: int) -> ExpertNotification:
    n = session.get(ExpertNotification, notification_id)
    if n is None or n.expert_id != expert_id:
        raise AssignmentNotFound("No such notification of yours.")
    n.read_at = n.read_at or now()
    session.flush()
    return n


def expert_consultations(
    session: Session, expert_id: uuid.UUID, *, upcoming_only: bool
) -> Sequence[tuple[Consultation, IntakeRequest]]:
    """An expert's consultations with their requests, by start: booked ones not yet over, or
    (``upcoming_only`` False) every one they hold, past and cancelled too. Only the expert's
    own: a consultation moves with the request when it is reassigned."""
    stmt = (
        select(Consultation, IntakeRequest)
        .join(IntakeRequest, IntakeRequest.id == Consultation.request_id)
        .where(Consultation.expert_id == expert_id)
    )
    if upcoming_only:
        stmt = stmt.where(
            Consultation.status == ConsultationStatus.booked, Consultation.end_at >= now()
        )
    rows = session.execute(stmt.order_by(Consultation.start_at, Consultation.id)).all()
    return [(consultation, req) for consultation, req in rows]


def expert_zone(session: Session, expert_id: uuid.UUID) -> str:
    """The zone an expert's times are shown in: their availability's, else their profile's."""
    availability = session.get(ExpertAvailability, expert_id)
    if availability is not None:
        return availability.timezone
    profile = session.get(ExpertProfile, expert_id)
    return profile.timezone if profile is not None else "UTC"


@dataclass(frozen=True)
class Load:
    """An expert's load at a glance: live assignments by state (capacity counts both)."""

    accepted: int = 0
    offered: int = 0

    @property
    def open(self) -> int:
        return self.accepted + self.offered


def loads(session: Session, expert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Load]:
    """Accepted and pending (offered) assignments of each expert, in one query."""
    counts: dict[uuid.UUID, dict[AssignmentStatus, int]] = {i: {} for i in expert_ids}
    if expert_ids:
        rows = session.execute(
            select(Assignment.expert_id, Assignment.status, func.count())
            .where(Assignment.expert_id.in_(expert_ids), Assignment.status.in_(LIVE_ASSIGNMENT))
            .group_by(Assignment.expert_id, Assignment.status)
        ).all()
        for expert_id, status, count in rows:
            counts[expert_id][status] = int(count)
    return {
        i: Load(c.get(AssignmentStatus.accepted, 0), c.get(AssignmentStatus.offered, 0))
        for i, c in counts.items()
    }


def with_weekly_hours(session: Session, expert_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """The experts among these whose stored availability has at least one weekly range."""
    if not expert_ids:
        return set()
    rows = session.execute(
        select(ExpertAvailability.expert_id, ExpertAvailability.weekly).where(
            ExpertAvailability.expert_id.in_(expert_ids)
        )
    ).all()
    return {expert_id for expert_id, weekly in rows if weekly}
