"""Expert profiles: admin create/update/deactivate, coverage, absences, CV, regions' leads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.errors import FieldProblem, Unprocessable
from app.core.time import ensure_utc, now
from app.documents import service as documents
from app.experts.errors import ExpertNotFound, NotAnExpertAccount, ProfileExists
from app.experts.schemas import AbsenceIn, ExpertIn, ExpertUpdate
from app.models import (
    Document,
    DocumentKind,
    ExpertCountry,
    ExpertProfile,
    ExpertRegion,
    Region,
    Role,
    UnavailablePeriod,
    User,
)
from app.routing import assignments


@dataclass
class ExpertRecord:
    """A profile with what it covers (loaded explicitly: relationships never lazy-load)."""

    profile: ExpertProfile
    regions: list[str]
    countries: list[str]
    available_now: bool


def _coverage(session: Session, ids: Sequence[uuid.UUID]) -> tuple[dict[uuid.UUID, list[str]], ...]:
    regions: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    countries: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    if ids:
        for eid, code in session.execute(
            select(ExpertRegion.expert_id, ExpertRegion.region_code)
            .where(ExpertRegion.expert_id.in_(ids))
            .order_by(ExpertRegion.region_code)
        ):
            regions[eid].append(code)
        for eid, code in session.execute(
            select(ExpertCountry.expert_id, ExpertCountry.country_code)
            .where(ExpertCountry.expert_id.in_(ids))
            .order_by(ExpertCountry.country_code)
        ):
            countries[eid].append(code)
    return regions, countries


def _away(session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    current = now()
    return set(
        session.scalars(
            select(UnavailablePeriod.expert_id).where(
                UnavailablePeriod.expert_id.in_(ids),
                UnavailablePeriod.starts_at <= current,
                UnavailablePeriod.ends_at > current,
            )
        )
    )


def records(session: Session, profiles: Sequence[ExpertProfile]) -> list[ExpertRecord]:
    ids = [p.user_id for p in profiles]
    regions, countries = _coverage(session, ids)
    away = _away(session, ids)
    return [
        ExpertRecord(p, regions[p.user_id], countries[p.user_id], p.user_id not in away)
        for p in profiles
    ]


def get_profile(session: Session, expert_id: uuid.UUID) -> ExpertProfile:
    profile = session.get(ExpertProfile, expert_id)
    if profile is None:
        raise ExpertNotFound("No expert with this id.")
    return profile


def get_record(session: Session, expert_id: uuid.UUID) -> ExpertRecord:
    return records(session, [get_profile(session, expert_id)])[0]


def list_profiles(session: Session, *, active_only: bool = False) -> list[ExpertRecord]:
    stmt = select(ExpertProfile).order_by(ExpertProfile.public_name, ExpertProfile.user_id)
    if active_only:
        stmt = stmt.join(User, User.id == ExpertProfile.user_id).where(
            ExpertProfile.is_active.is_(True), User.is_active.is_(True)
        )
    return records(session, session.scalars(stmt).all())


def accounts_without_profile(session: Session) -> Sequence[User]:
    """Active accounts of role expert that have no expert profile yet (the admin's "Add an
    expert" offers them), by name."""
    return session.scalars(
        select(User)
        .outerjoin(ExpertProfile, ExpertProfile.user_id == User.id)
        .where(User.role == Role.expert, User.is_active.is_(True), ExpertProfile.user_id.is_(None))
        .order_by(User.display_name, User.id)
    ).all()


def _check_regions(session: Session, codes: list[str]) -> None:
    if not codes:
        return
    known = set(session.scalars(select(Region.code).where(Region.code.in_(codes))))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise Unprocessable(
            "Unknown region codes.",
            fields=[FieldProblem(field="regions", message=f"unknown: {', '.join(unknown)}")],
        )


def _set_coverage(
    session: Session, expert_id: uuid.UUID, regions: list[str] | None, countries: list[str] | None
) -> None:
    if regions is not None:
        _check_regions(session, regions)
        session.execute(delete(ExpertRegion).where(ExpertRegion.expert_id == expert_id))
        session.add_all([ExpertRegion(expert_id=expert_id, region_code=c) for c in regions])
    if countries is not None:
        session.execute(delete(ExpertCountry).where(ExpertCountry.expert_id == expert_id))
        session.add_all([ExpertCountry(expert_id=expert_id, country_code=c) for c in countries])


def create(session: Session, data: ExpertIn) -> ExpertRecord:
    user = session.get(User, data.user_id)
    if user is None:
        raise ExpertNotFound("No user with this id.")
    if user.role != Role.expert:
        raise NotAnExpertAccount(
            f"The account's role is {user.role.value}; an expert profile needs role expert."
        )
    if session.get(ExpertProfile, user.id) is not None:
        raise ProfileExists("This account has an expert profile already.")
    profile = ExpertProfile(
        user_id=user.id,
        public_name=data.public_name.strip(),
        email=data.email,
        phone=data.phone,
        timezone=data.timezone,
        languages=data.languages,
        topics=[t.value for t in data.topics],
        max_open_assignments=data.max_open_assignments,
        open_assignments=0,
        zoom_user=data.zoom_user,
        personal_meeting_link=data.personal_meeting_link,
        bio=data.bio,
        is_active=True,
    )
    session.add(profile)
    user.timezone = profile.timezone  # one zone per expert: the account's is the profile's
    session.flush()
    _set_coverage(session, user.id, data.regions, data.countries)
    session.flush()
    return get_record(session, user.id)


def _same_zone_for_account(session: Session, expert_id: uuid.UUID, zone: str) -> None:
    """An expert's zone is one setting: their account's zone (pages, e-mails) follows the
    profile's, as app/accounts/service.py::update_settings moves the profile's with the
    account's."""
    user = session.get(User, expert_id)
    if user is not None:
        user.timezone = zone


REQUIRED = ("public_name", "email", "timezone", "languages", "max_open_assignments")


def update(session: Session, expert_id: uuid.UUID, data: ExpertUpdate) -> ExpertRecord:
    profile = get_profile(session, expert_id)
    given = data.model_dump(exclude_unset=True)
    for name in (
        "public_name",
        "email",
        "phone",
        "timezone",
        "languages",
        "max_open_assignments",
        "zoom_user",
        "personal_meeting_link",
        "bio",
    ):
        if name not in given:
            continue
        if given[name] is None and name in REQUIRED:
            raise Unprocessable(
                "This field cannot be emptied.",
                fields=[FieldProblem(field=name, message="may not be null")],
            )
        setattr(profile, name, given[name])
    if "topics" in given and data.topics is not None:
        profile.topics = [t.value for t in data.topics]
    if "timezone" in given:
        _same_zone_for_account(session, expert_id, profile.timezone)
    _set_coverage(
        session,
        expert_id,
        data.regions if "regions" in given else None,
        data.countries if "countries" in given else None,
    )
    session.flush()
    return get_record(session, expert_id)


def set_active(session: Session, expert_id: uuid.UUID, active: bool) -> ExpertRecord:
    profile = get_profile(session, expert_id)
    profile.is_active = active
    session.flush()
    if not active:
        assignments.withdraw_offers_of(session, expert_id, reason="expert_deactivated")
    return get_record(session, expert_id)


# Absences (the one absence model) ------------------------------------------------------------


def list_absences(session: Session, expert_id: uuid.UUID) -> Sequence[UnavailablePeriod]:
    get_profile(session, expert_id)
    return session.scalars(
        select(UnavailablePeriod)
        .where(UnavailablePeriod.expert_id == expert_id)
        .order_by(UnavailablePeriod.starts_at)
    ).all()


def add_absence(session: Session, expert_id: uuid.UUID, data: AbsenceIn) -> UnavailablePeriod:
    get_profile(session, expert_id)
    period = UnavailablePeriod(
        expert_id=expert_id,
        starts_at=ensure_utc(data.starts_at),
        ends_at=ensure_utc(data.ends_at),
        kind=data.kind,
        note=data.note,
        created_at=now(),
    )
    session.add(period)
    session.flush()
    return period


def delete_absence(session: Session, expert_id: uuid.UUID, period_id: int) -> None:
    period = session.get(UnavailablePeriod, period_id)
    if period is None or period.expert_id != expert_id:
        raise ExpertNotFound("No such unavailable period.")
    session.delete(period)
    session.flush()


# CV ------------------------------------------------------------------------------------------


def set_cv(
    session: Session, expert_id: uuid.UUID, *, data: bytes, filename: str | None, by: User
) -> Document:
    profile = get_profile(session, expert_id)
    doc = documents.store(
        session,
        data=data,
        filename=filename,
        kind=DocumentKind.cv,
        uploaded_by=by.id,
        owner_id=expert_id,
    )
    profile.cv_document_id = doc.id
    session.flush()
    return doc


# Regions' leads ------------------------------------------------------------------------------


def region_leads(session: Session) -> list[tuple[Region, str | None]]:
    rows = session.execute(
        select(Region, ExpertProfile.public_name)
        .outerjoin(ExpertProfile, ExpertProfile.user_id == Region.lead_expert_id)
        .order_by(Region.name)
    ).all()
    return [(region, name) for region, name in rows]


def set_region_lead(
    session: Session, region_code: str, expert_id: uuid.UUID | None
) -> tuple[Region, str | None]:
    region = session.get(Region, region_code)
    if region is None:
        raise ExpertNotFound("No region with this code.")
    name = None
    if expert_id is not None:
        profile = get_profile(session, expert_id)
        if not profile.is_active:
            raise NotAnExpertAccount("A deactivated expert cannot lead a region.")
        name = profile.public_name
    region.lead_expert_id = expert_id
    session.flush()
    return region, name
