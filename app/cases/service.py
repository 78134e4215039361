"""Reading one case for staff (and the expert who accepted it): decrypted request, SLA, country
profile, routing, consultations, contacts, outbound messages and the full history.

Who may: ``app.sla.service.case_for`` (staff and admins; an expert only once they accepted the
assignment; anyone else 404, the same as a request that does not exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.intake import keys
from app.intake.service import reveal_pii
from app.models import (
    Consultation,
    Country,
    IntakeRequest,
    OutboxMessage,
    RequestContact,
    RequestHistory,
    User,
)
from app.sla import service as sla

#: The seal kind of ``request_history.data_enc`` (JSON under the request's data key).
HISTORY_KIND = "history"


def case_for(session: Session, reference: str, user: User) -> IntakeRequest:
    return sla.case_for(session, reference, user)


def contacts(session: Session, req: IntakeRequest) -> Sequence[RequestContact]:
    return sla.contacts(session, req)


def country_of(session: Session, req: IntakeRequest) -> Country | None:
    return session.get(Country, req.country_of_origin)


def linked_reference(session: Session, req: IntakeRequest) -> str | None:
    if req.linked_request_id is None:
        return None
    return session.scalar(
        select(IntakeRequest.reference).where(IntakeRequest.id == req.linked_request_id)
    )


def personal(req: IntakeRequest) -> dict[str, Any] | None:
    return reveal_pii(req)


def consultations(session: Session, req: IntakeRequest) -> Sequence[Consultation]:
    return session.scalars(
        select(Consultation).where(Consultation.request_id == req.id).order_by(Consultation.id)
    ).all()


def messages(session: Session, req: IntakeRequest) -> Sequence[OutboxMessage]:
    """Outbox rows whose params name this request (``{"request_id": ...}``)."""
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.params["request_id"].as_string() == str(req.id))
        .order_by(OutboxMessage.id)
    ).all()


def history(session: Session, req: IntakeRequest) -> list[tuple[RequestHistory, Any | None]]:
    rows = session.scalars(
        select(RequestHistory)
        .where(RequestHistory.request_id == req.id)
        .order_by(RequestHistory.at, RequestHistory.id)
    ).all()
    dk = keys.data_key(req) if any(r.data_enc is not None for r in rows) else None
    out: list[tuple[RequestHistory, Any | None]] = []
    for r in rows:
        data: Any | None = None
        if r.data_enc is not None and dk is not None:
            data = keys.unseal_json(dk, HISTORY_KIND, req.id, r.data_enc)
        out.append((r, data))
    return out
