"""Who else has a case open: a heartbeat (``viewing`` or ``replying``) every few seconds, and
the list of the others seen within ``PRESENCE_WINDOW``. Names of staff and experts only, never
anything of the requester; rows are overwritten per person and case, stale ones ignored."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import IntakeRequest, User
from app.models.messages import CasePresence, PresenceActivity

#: Someone not seen for this long has left the case (clients beat every ~15 seconds).
PRESENCE_WINDOW = dt.timedelta(seconds=45)


@dataclass(frozen=True)
class Present:
    user_id: uuid.UUID
    name: str
    role: str
    activity: PresenceActivity
    seen_at: dt.datetime


def heartbeat(
    session: Session, req: IntakeRequest, user: User, activity: PresenceActivity
) -> list[Present]:
    """Record that ``user`` has the case open (doing ``activity``); returns the others."""
    current = now()
    row = session.get(CasePresence, (req.id, user.id), with_for_update=True)
    if row is None:
        session.add(
            CasePresence(request_id=req.id, user_id=user.id, activity=activity, seen_at=current)
        )
    else:
        row.activity = activity
        row.seen_at = current
    session.flush()
    return others(session, req, user)


def leave(session: Session, req: IntakeRequest, user: User) -> None:
    session.execute(
        delete(CasePresence).where(
            CasePresence.request_id == req.id, CasePresence.user_id == user.id
        )
    )
    session.flush()


def others(session: Session, req: IntakeRequest, user: User) -> list[Present]:
    """Everyone else seen on this case within the window, most recent first."""
    since = now() - PRESENCE_WINDOW
    rows = session.execute(
        select(CasePresence, User.display_name, User.role)
        .join(User, User.id == CasePresence.user_id)
        .where(
            CasePresence.request_id == req.id,
            CasePresence.user_id != user.id,
            CasePresence.seen_at >= since,
        )
        .order_by(CasePresence.seen_at.desc())
    ).all()
    return [Present(p.user_id, name, role.value, p.activity, p.seen_at) for p, name, role in rows]
