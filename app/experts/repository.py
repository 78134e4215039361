"""Queries of routing: the candidates of a request in one statement, the experts already passed
over for it, and taking or releasing a unit of an expert's capacity."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ColumnElement, Exists, and_, exists, select, update
from sqlalchemy.orm import Session

from app.experts.routing import TIER_COUNTRY, TIER_REGION, Candidate
from app.models import (
    LIVE_ASSIGNMENT,
    Assignment,
    AssignmentStatus,
    ExpertCountry,
    ExpertProfile,
    ExpertRegion,
    Role,
    UnavailablePeriod,
    User,
)

# Why an expert who had this request before is not offered it again.
PASSED_OVER = {
    AssignmentStatus.declined: "declined_before",
    AssignmentStatus.expired: "no_answer_before",
    AssignmentStatus.reassigned: "reassigned_away_before",
}


def away_clause(current: dt.datetime) -> Exists:
    return exists().where(
        UnavailablePeriod.expert_id == ExpertProfile.user_id,
        UnavailablePeriod.starts_at <= current,
        UnavailablePeriod.ends_at > current,
    )


def is_away(session: Session, expert_id: uuid.UUID, current: dt.datetime) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    UnavailablePeriod.expert_id == expert_id,
                    UnavailablePeriod.starts_at <= current,
                    UnavailablePeriod.ends_at > current,
                )
            )
        )
    )


def candidates(
    session: Session, *, country: str, region: str | None, current: dt.datetime
) -> list[Candidate]:
    """Active experts (active accounts of role expert) covering the country or the region."""
    covers_country = exists().where(
        ExpertCountry.expert_id == ExpertProfile.user_id, ExpertCountry.country_code == country
    )
    coverage: ColumnElement[bool] = covers_country
    if region is not None:
        covers_region = exists().where(
            ExpertRegion.expert_id == ExpertProfile.user_id, ExpertRegion.region_code == region
        )
        coverage = coverage | covers_region
    stmt = (
        select(
            ExpertProfile.user_id,
            ExpertProfile.languages,
            ExpertProfile.topics,
            ExpertProfile.open_assignments,
            ExpertProfile.max_open_assignments,
            ExpertProfile.last_assigned_at,
            away_clause(current).label("away"),
            covers_country.label("covers_country"),
        )
        .join(User, User.id == ExpertProfile.user_id)
        .where(
            ExpertProfile.is_active.is_(True),
            User.is_active.is_(True),
            User.role == Role.expert,
            coverage,
        )
    )
    return [
        Candidate(
            expert_id=row.user_id,
            tier=TIER_COUNTRY if row.covers_country else TIER_REGION,
            languages=row.languages or [],
            topics=row.topics or [],
            open_assignments=row.open_assignments,
            max_open_assignments=row.max_open_assignments,
            last_assigned_at=row.last_assigned_at,
            away=bool(row.away),
        )
        for row in session.execute(stmt)
    ]


def passed_over(session: Session, request_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows = session.execute(
        select(Assignment.expert_id, Assignment.status).where(
            Assignment.request_id == request_id,
            Assignment.status.in_(list(PASSED_OVER)),
        )
    )
    return {expert_id: PASSED_OVER[status] for expert_id, status in rows}


def live_assignment(
    session: Session, request_id: uuid.UUID, *, for_update: bool = False
) -> Assignment | None:
    stmt = select(Assignment).where(
        Assignment.request_id == request_id, Assignment.status.in_(LIVE_ASSIGNMENT)
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def take_capacity(session: Session, expert_id: uuid.UUID, current: dt.datetime) -> bool:
    """One more open assignment for this expert, only if below their maximum and active.

    A single conditional UPDATE: on PostgreSQL a concurrent transaction that changed the row
    makes this one wait and then re-check the condition on the committed row, so two routings
    can never both take the last unit; on SQLite the write transaction is BEGIN IMMEDIATE.
    """
    taken = session.scalar(
        update(ExpertProfile)
        .where(
            and_(
                ExpertProfile.user_id == expert_id,
                ExpertProfile.is_active.is_(True),
                ExpertProfile.open_assignments < ExpertProfile.max_open_assignments,
            )
        )
        .values(open_assignments=ExpertProfile.open_assignments + 1, last_assigned_at=current)
        .returning(ExpertProfile.user_id)
        .execution_options(synchronize_session="fetch")
    )
    return taken is not None


def release_capacity(session: Session, expert_id: uuid.UUID) -> None:
    session.execute(
        update(ExpertProfile)
        .where(ExpertProfile.user_id == expert_id, ExpertProfile.open_assignments > 0)
        .values(open_assignments=ExpertProfile.open_assignments - 1)
        .execution_options(synchronize_session="fetch")
    )
