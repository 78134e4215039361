"""Which request an incoming message belongs to.

1. ``In-Reply-To`` / ``References`` pointing at a Message-ID stored on a request (one the service
   sent, or an earlier message of the thread) - that request;
2. else a reference in the subject (``[ABCD1234]``, as every e-mail to a requester carries) from
   the same sender (``sender_lookup == requests.email_lookup``) - that request;
3. the same reference from another sender - a new request, flagged as a possible follow-up of
   the one it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.intake.records import normalise_reference
from app.models import IntakeRequest, RequestMessage

_BRACKETED = re.compile(r"\[\s*(?:ref(?:erence)?[:#\s]*)?([0-9A-Za-z][0-9A-Za-z \-]{6,12})\s*\]")


@dataclass(frozen=True)
class Match:
    request: IntakeRequest | None
    how: str  # "headers", "subject", "follow_up", "none"


def subject_references(subject: str) -> list[str]:
    found = []
    for candidate in _BRACKETED.findall(subject):
        ref = normalise_reference(candidate)
        if ref is not None:
            found.append(ref)
    return list(dict.fromkeys(found))


def find(session: Session, *, thread_ids: list[str], subject: str, sender_lookup: str) -> Match:
    if thread_ids:
        request_id = session.scalar(
            select(RequestMessage.request_id)
            .where(RequestMessage.message_id.in_(thread_ids))
            .order_by(RequestMessage.id.desc())
            .limit(1)
        )
        if request_id is not None:
            req = session.get(IntakeRequest, request_id)
            if req is not None:
                return Match(req, "headers")
    refs = subject_references(subject)
    if refs:
        named = session.scalars(
            select(IntakeRequest).where(IntakeRequest.reference.in_(refs))
        ).all()
        for req in named:
            if req.email_lookup is not None and req.email_lookup == sender_lookup:
                return Match(req, "subject")
        if named:
            return Match(named[0], "follow_up")
    return Match(None, "none")
