"""Internal notes on a case (staff, and the expert who accepted it); never shown to the
requester. The body is encrypted with the request's data key; the history row says only that a
note was added (its id)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.errors import CaseErased, InvalidCaseInput
from app.core.time import now
from app.intake import keys
from app.intake.records import add_history
from app.models import IntakeRequest, RequestNote, User
from app.models.messages import NOTE_SEAL_KIND

NOTE_MAX_CHARS = 10_000


@dataclass(frozen=True)
class NoteView:
    id: int
    created_at: dt.datetime
    author_id: uuid.UUID | None
    author_name: str | None
    body: str | None  # None once the request was erased


def add_note(session: Session, req: IntakeRequest, user: User, body: str) -> RequestNote:
    """Keep an internal note (422 ``body`` when empty or too long; 409 once erased)."""
    text = (body or "").strip()
    if not text:
        raise InvalidCaseInput("body", "is empty; write the note")
    if len(text) > NOTE_MAX_CHARS:
        raise InvalidCaseInput("body", f"is longer than {NOTE_MAX_CHARS} characters")
    dk = keys.data_key(req)
    if dk is None:
        raise CaseErased()
    current = now()
    note = RequestNote(
        request_id=req.id,
        author_id=user.id,
        created_at=current,
        body_enc=keys.seal(dk, NOTE_SEAL_KIND, req.id, text.encode()),
    )
    session.add(note)
    session.flush()
    add_history(
        session,
        req,
        actor=f"user:{user.id}",
        action="note_added",
        details={"note_id": note.id, "by_role": user.role.value},
        at=current,
    )
    session.flush()
    return note


def notes(session: Session, req: IntakeRequest) -> list[NoteView]:
    rows: Sequence[tuple[RequestNote, str | None]] = session.execute(
        select(RequestNote, User.display_name)
        .outerjoin(User, User.id == RequestNote.author_id)
        .where(RequestNote.request_id == req.id)
        .order_by(RequestNote.created_at, RequestNote.id)
    ).all()
    dk = keys.data_key(req) if rows else None
    out = []
    for note, name in rows:
        body = None
        if dk is not None and note.body_enc is not None:
            body = keys.unseal(dk, NOTE_SEAL_KIND, req.id, note.body_enc).decode()
        out.append(NoteView(note.id, note.created_at, note.author_id, name, body))
    return out
