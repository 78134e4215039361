"""A request's primitives that every domain uses: its history rows, finding it by reference,
its encrypted personal fields and link token, its first-response state.

A leaf: it imports only ``app.core``, ``app.models`` and intake's own leaves (``keys`` for the
data key, ``sla`` for the one SLA rule), so any domain may import it without pulling intake's
service, and through it other domains, into its imports (``tests/system/test_architecture.py``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from itertools import chain
from typing import Any, cast

from sqlalchemy import FromClause, Insert, Table, func, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.core.settings import get_settings
from app.core.time import now
from app.intake import keys
from app.intake.sla import SlaState, sla_state
from app.models import IntakeRequest, RequestHistory, RequestStatus

# Crockford base32: no I, L, O, U, so a reference read aloud or copied by hand survives.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 8  # 40 random bits


def new_reference() -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(REFERENCE_LENGTH))


def normalise_reference(value: str) -> str | None:
    """Accept lower case, spaces and hyphens, and the look-alikes Crockford maps (I/L -> 1,
    O -> 0). None: cannot be a reference."""
    text = value.strip().upper().replace("-", "").replace(" ", "")
    text = text.translate(str.maketrans("ILO", "110"))
    if len(text) != REFERENCE_LENGTH or any(c not in CROCKFORD for c in text):
        return None
    return text


def get_by_reference(session: Session, reference: str) -> IntakeRequest | None:
    ref = normalise_reference(reference)
    if ref is None:
        return None
    return session.scalar(select(IntakeRequest).where(IntakeRequest.reference == ref))


def add_history(
    session: Session,
    req: IntakeRequest,
    *,
    actor: str,
    action: str,
    from_status: RequestStatus | None = None,
    to_status: RequestStatus | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> RequestHistory:
    row = RequestHistory(
        request_id=req.id,
        at=at or now(),
        actor=actor,
        action=action,
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        details=details or {},
    )
    session.add(row)
    return row


_INSERT_HISTORY = cast(Table, RequestHistory.__table__).insert()


def insert_history(
    session: Session,
    req: IntakeRequest,
    action: str,
    *,
    actor: str,
    details: dict[str, Any],
    at: dt.datetime,
) -> None:
    """The row ``add_history`` writes (no status change), inserted at once with a prebuilt
    statement instead of through the session: routing runs inside every submission, and the
    unit of work costs more than the insert. For rows nobody reads back in the transaction."""
    session.execute(
        _INSERT_HISTORY,
        {
            "request_id": req.id,
            "at": at,
            "actor": actor,
            "action": action,
            "from_status": None,
            "to_status": None,
            "details": details,
            "data_enc": None,
        },
    )


def insert_history_from(
    source: FromClause,
    *,
    request_id: ColumnElement[Any],
    at: ColumnElement[Any],
    actor: ColumnElement[Any],
    action: str,
    details: Mapping[str, ColumnElement[Any]],
) -> Insert:
    """The row ``insert_history`` writes, for a caller that composes it into a statement of its
    own (routing's offer writes all its rows in one round trip on PostgreSQL): the INSERT of one
    history row per row of ``source``, ``details`` the JSON object of the given expressions
    (PostgreSQL's ``json_build_object``). Meant as a CTE."""
    detail_pairs = chain.from_iterable((literal(key), value) for key, value in details.items())
    rows = select(
        request_id, at, actor, literal(action), func.json_build_object(*detail_pairs)
    ).select_from(source)
    return insert(_INSERT_HISTORY.table).from_select(
        ["request_id", "at", "actor", "action", "details"], rows
    )


def reveal_pii(req: IntakeRequest) -> dict[str, Any] | None:
    dk = keys.data_key(req)
    if dk is None or req.pii_enc is None:
        return None
    value: dict[str, Any] = keys.unseal_json(dk, "pii", req.id, req.pii_enc)
    return value


def reveal_token(req: IntakeRequest) -> str | None:
    dk = keys.data_key(req)
    if dk is None or req.token_enc is None:
        return None
    return keys.unseal(dk, "token", req.id, req.token_enc).decode()


def current_sla(req: IntakeRequest, current: dt.datetime | None = None) -> SlaState:
    return sla_state(
        due_at=req.first_response_due_at,
        responded_at=req.first_responded_at,
        ended_at=req.ended_at,
        current=current or now(),
        due_soon=dt.timedelta(minutes=get_settings().sla_due_soon_minutes),
    )
