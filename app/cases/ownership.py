"""Who took a request ("Take it"): the staff member who answers the requester.

At most one owner per request (``request_owners``); taking it from someone else moves it, and
the history says who took it from whom. Distinct from offering the request to an expert
(routing's offer, "Send the offer"): taking it changes no assignment. Staff and admins only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.access import STAFF_ROLES
from app.cases.errors import StaffOnly
from app.core.time import now
from app.intake.records import add_history
from app.models import IntakeRequest, RequestOwner, User


@dataclass(frozen=True)
class Owner:
    user_id: uuid.UUID
    name: str
    taken_at: dt.datetime


def owner_of(session: Session, req: IntakeRequest) -> Owner | None:
    row = session.execute(
        select(RequestOwner, User.display_name)
        .join(User, User.id == RequestOwner.user_id)
        .where(RequestOwner.request_id == req.id)
    ).first()
    if row is None:
        return None
    owner, name = row
    return Owner(owner.user_id, name, owner.taken_at)


def take(session: Session, req: IntakeRequest, user: User) -> Owner:
    """``user`` takes the request (403 for anyone but staff and admins). Taking one's own
    request again changes nothing and writes no history."""
    if user.role not in STAFF_ROLES:
        raise StaffOnly()
    current = now()
    row = session.get(RequestOwner, req.id)
    if row is not None and row.user_id == user.id:
        return Owner(user.id, user.display_name, row.taken_at)
    previous = row.user_id if row is not None else None
    if row is None:
        row = RequestOwner(request_id=req.id, user_id=user.id, taken_at=current)
        session.add(row)
    else:
        row.user_id = user.id
        row.taken_at = current
    add_history(
        session,
        req,
        actor=f"user:{user.id}",
        action="owner_taken",
        details={
            "owner_id": str(user.id),
            "previous_owner_id": str(previous) if previous is not None else None,
        },
        at=current,
    )
    session.flush()
    return Owner(user.id, user.display_name, current)
