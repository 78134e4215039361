"""Admin changes to the roster: weekly shifts and one-off overrides."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import ExpertProfile, RosterOverride, RosterShift, User
from app.roster.errors import InvalidRosterEntry, OverrideNotFound, ShiftNotFound
from app.roster.schemas import OverrideIn, ShiftIn, ShiftPatch
from app.roster.service import zone


def _person(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise InvalidRosterEntry("user_id", "no such user")
    if not user.is_active:
        raise InvalidRosterEntry("user_id", "this account is deactivated")
    return user


def default_zone(session: Session, user: User) -> str:
    """An expert's profile zone; anyone else: UTC (staff accounts carry no zone)."""
    profile = session.get(ExpertProfile, user.id)
    return profile.timezone if profile is not None else "UTC"


def list_shifts(session: Session, user_id: uuid.UUID | None = None) -> list[RosterShift]:
    stmt = select(RosterShift).order_by(RosterShift.weekday, RosterShift.starts_local)
    if user_id is not None:
        stmt = stmt.where(RosterShift.user_id == user_id)
    return list(session.scalars(stmt).all())


def create_shift(session: Session, body: ShiftIn) -> RosterShift:
    user = _person(session, body.user_id)
    shift = RosterShift(
        user_id=user.id,
        timezone=body.timezone or default_zone(session, user),
        weekday=body.weekday,
        starts_local=body.starts_local.replace(tzinfo=None),
        ends_local=body.ends_local.replace(tzinfo=None),
        level=body.level,
        note=body.note,
    )
    session.add(shift)
    session.flush()
    return shift


def get_shift(session: Session, shift_id: int) -> RosterShift:
    shift = session.get(RosterShift, shift_id)
    if shift is None:
        raise ShiftNotFound("No such shift.")
    return shift


def update_shift(session: Session, shift_id: int, body: ShiftPatch) -> RosterShift:
    shift = get_shift(session, shift_id)
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name != "note":
            raise InvalidRosterEntry(name, "may not be null")
        if isinstance(value, dt.time):
            value = value.replace(tzinfo=None)
        setattr(shift, name, value)
    session.flush()
    return shift


def delete_shift(session: Session, shift_id: int) -> None:
    session.delete(get_shift(session, shift_id))
    session.flush()


def list_overrides(
    session: Session, *, since: dt.datetime | None = None, user_id: uuid.UUID | None = None
) -> list[RosterOverride]:
    stmt = select(RosterOverride).order_by(RosterOverride.starts_at)
    if since is not None:
        stmt = stmt.where(RosterOverride.ends_at > since)
    if user_id is not None:
        stmt = stmt.where(RosterOverride.user_id == user_id)
    return list(session.scalars(stmt).all())


def _instant(value: dt.datetime, tz_name: str, field: str) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    try:
        return value.replace(tzinfo=zone(tz_name)).astimezone(dt.UTC)
    except ValueError as exc:
        raise InvalidRosterEntry(field, str(exc)) from None


def create_override(session: Session, body: OverrideIn) -> RosterOverride:
    user = _person(session, body.user_id)
    tz_name = body.timezone or default_zone(session, user)
    starts = _instant(body.starts_at, tz_name, "starts_at")
    ends = _instant(body.ends_at, tz_name, "ends_at")
    if ends <= starts:
        raise InvalidRosterEntry("ends_at", "must be after starts_at")
    if ends - starts > dt.timedelta(days=31):
        raise InvalidRosterEntry("ends_at", "an override lasts at most 31 days")
    row = RosterOverride(
        user_id=user.id,
        kind=body.kind,
        starts_at=starts,
        ends_at=ends,
        level=body.level,
        note=body.note,
        created_at=now(),
    )
    session.add(row)
    session.flush()
    return row


def delete_override(session: Session, override_id: int) -> None:
    row = session.get(RosterOverride, override_id)
    if row is None:
        raise OverrideNotFound("No such override.")
    session.delete(row)
    session.flush()
