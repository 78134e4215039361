"""Queries of routing: the candidates of a request in one statement, the experts already passed
over for it, and taking or releasing a unit of an expert's capacity."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import ColumnElement, Exists, Select, Table, bindparam, exists, select, update
from sqlalchemy.orm import Session

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
from app.models.base import UTCDateTime
from app.routing.decision import TIER_COUNTRY, TIER_REGION, Candidate

# Why an expert who had this request before is not offered it again.
PASSED_OVER = {
    AssignmentStatus.declined: "declined_before",
    AssignmentStatus.expired: "no_answer_before",
    AssignmentStatus.reassigned: "reassigned_away_before",
}


def _away(expert_id: Any) -> Exists:
    return exists().where(
        UnavailablePeriod.expert_id == expert_id,
        UnavailablePeriod.starts_at <= bindparam("current"),
        UnavailablePeriod.ends_at > bindparam("current"),
    )


_IS_AWAY = select(_away(bindparam("expert_id")))


def is_away(session: Session, expert_id: uuid.UUID, current: dt.datetime) -> bool:
    return bool(session.scalar(_IS_AWAY, {"expert_id": expert_id, "current": current}))


def _candidates_statement(tier: str) -> Select[Any]:
    """Built once per tier (routing runs on every submission: no statement building, no cache
    key computing per call). Parameters: country, region, current, request_id."""
    covers_country = exists().where(
        ExpertCountry.expert_id == ExpertProfile.user_id,
        ExpertCountry.country_code == bindparam("country"),
    )
    coverage: ColumnElement[bool] = covers_country
    if tier != TIER_COUNTRY:
        coverage = (
            exists().where(
                ExpertRegion.expert_id == ExpertProfile.user_id,
                ExpertRegion.region_code == bindparam("region"),
            )
            & ~covers_country
        )
    passed = (
        select(Assignment.status)
        .where(
            Assignment.request_id == bindparam("request_id"),
            Assignment.expert_id == ExpertProfile.user_id,
            Assignment.status.in_([s.value for s in PASSED_OVER]),
        )
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            ExpertProfile.user_id,
            ExpertProfile.languages,
            ExpertProfile.topics,
            ExpertProfile.open_assignments,
            ExpertProfile.max_open_assignments,
            ExpertProfile.last_assigned_at,
            _away(ExpertProfile.user_id).label("away"),
            passed.label("passed"),
        )
        .join(User, User.id == ExpertProfile.user_id)
        .where(
            ExpertProfile.is_active.is_(True),
            User.is_active.is_(True),
            User.role == Role.expert,
            coverage,
        )
    )


_CANDIDATES = {tier: _candidates_statement(tier) for tier in (TIER_COUNTRY, TIER_REGION)}
NO_REQUEST = uuid.UUID(int=0)


def candidates(
    session: Session,
    *,
    country: str,
    region: str | None,
    current: dt.datetime,
    tier: str = TIER_COUNTRY,
    request_id: uuid.UUID | None = None,
) -> list[Candidate]:
    """Active experts (active accounts of role expert) of one tier: those covering the country
    by name, or (``tier="region"``) those covering its region but not the country by name.
    Each row says whether the expert is away now and whether they were passed over for this
    request before. One statement; the coverage tables are read through their indexes."""
    if tier != TIER_COUNTRY and region is None:
        return []
    params = {
        "country": country,
        "region": region,
        "current": current,
        "request_id": request_id or NO_REQUEST,
    }
    return [
        Candidate(
            expert_id=row.user_id,
            tier=tier,
            languages=row.languages or [],
            topics=row.topics or [],
            open_assignments=row.open_assignments,
            max_open_assignments=row.max_open_assignments,
            last_assigned_at=row.last_assigned_at,
            away=bool(row.away),
            passed_over=PASSED_OVER[AssignmentStatus(row.passed)] if row.passed else None,
        )
        for row in session.execute(_CANDIDATES[tier], params)
    ]


def live_assignment(
    session: Session, request_id: uuid.UUID, *, for_update: bool = False
) -> Assignment | None:
    stmt = select(Assignment).where(
        Assignment.request_id == request_id, Assignment.status.in_(LIVE_ASSIGNMENT)
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


_profiles = cast(Table, ExpertProfile.__table__)

# Core statements on the table: no ORM bookkeeping on the hot path. The conditional UPDATE is
# the capacity check itself.
_TAKE = (
    update(_profiles)
    .where(
        _profiles.c.user_id == bindparam("expert_id"),
        _profiles.c.is_active.is_(True),
        _profiles.c.open_assignments < _profiles.c.max_open_assignments,
    )
    .values(
        open_assignments=_profiles.c.open_assignments + 1,
        last_assigned_at=bindparam("current", type_=UTCDateTime()),
    )
    .returning(_profiles.c.user_id)
)
_RELEASE = (
    update(_profiles)
    .where(_profiles.c.user_id == bindparam("expert_id"), _profiles.c.open_assignments > 0)
    .values(open_assignments=_profiles.c.open_assignments - 1)
)


def take_capacity(session: Session, expert_id: uuid.UUID, current: dt.datetime) -> bool:
    """One more open assignment for this expert, only if below their maximum and active.

    A single conditional UPDATE: on PostgreSQL a concurrent transaction that changed the row
    makes this one wait and then re-check the condition on the committed row, so two routings
    can never both take the last unit; on SQLite the write transaction is BEGIN IMMEDIATE.
    Loaded ``ExpertProfile`` objects are not refreshed: read them with ``populate_existing``.
    """
    taken = session.execute(_TAKE, {"expert_id": expert_id, "current": current}).first()
    return taken is not None


def release_capacity(session: Session, expert_id: uuid.UUID) -> None:
    session.execute(_RELEASE, {"expert_id": expert_id})
