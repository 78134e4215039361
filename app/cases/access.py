"""Who may open a case, and who may act on it.

- Reading, notes, replies, contacts, presence: staff and admins, and the expert whose assignment
  is accepted (``app.sla.service.case_for``); anyone else 404, like a request that does not
  exist.
- Staff actions (status, assignment, corrections, merge, resend): staff and admins; the accepted
  expert gets 403 (they can see the case), anyone else the same 404.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.cases.errors import StaffOnly
from app.models import IntakeRequest, Role, User
from app.sla import service as sla

#: The seal kind of ``request_history.data_enc`` (JSON under the request's data key).
HISTORY_KIND = "history"

STAFF_ROLES = (Role.staff, Role.admin)


def case_for(session: Session, reference: str, user: User) -> IntakeRequest:
    return sla.case_for(session, reference, user)


def staff_case_for(session: Session, reference: str, user: User) -> IntakeRequest:
    req = sla.case_for(session, reference, user)
    if user.role not in STAFF_ROLES:
        raise StaffOnly()
    return req
