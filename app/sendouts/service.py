"""Documents to requesters and consultation reminders: what is queued, and what is chosen.

Documents (a sample report and an expert's CV, when the request asked for them):
- queued at submission, due ``INTAKE_DOCUMENTS_WAIT_MINUTES`` after the request was received,
  and queued again (due now) when an expert accepts the request (or is pinned by a booking).
  Whichever row is delivered first sends; the handler records ``documents_sent`` in the
  request's history and every later row finds it there and sends nothing.
- the sample report that best matches: tagged with the request's country of origin, else its
  region, else an untagged (general) one; the newest of the best tier.
- the CV of the expert who accepted the request, else of the region's lead.

Reminders: 24 hours and 1 hour before a booked consultation, one row each for the requester
and the expert, keyed by the consultation, its iCalendar SEQUENCE and start. Every change of the
consultation (``send_invites`` is called on each) brings the rows in line: rows for an old time
or expert are cancelled (status ``cancelled``), rows for the current one are queued. The handler
checks again that the consultation is still booked at that start.

This module imports no other domain's service (intake and routing call into it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, defer

from app.core.settings import get_settings
from app.core.time import now
from app.documents import service as documents
from app.models import (
    Assignment,
    AssignmentStatus,
    Consultation,
    ConsultationStatus,
    Country,
    Document,
    DocumentKind,
    ExpertProfile,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    Region,
    RequestHistory,
    Role,
    User,
)
from app.outbox import service as outbox
from app.sendouts.errors import BadSampleReportTag, SampleReportNotFound

log = structlog.get_logger(__name__)

DOCUMENTS_KIND = "sendouts.documents"
MISSING_ALERT_KIND = "sendouts.documents_missing"
REMINDER_KIND = "sendouts.consultation_reminder"

WANT_SAMPLE = "sample_report"
WANT_CV = "expert_cv"
SENT_ACTION = "documents_sent"
MISSING_ACTION = "documents_missing"  # staff were alerted (once per request)
REMINDER_OFFSETS_MINUTES = (24 * 60, 60)


# Documents: when ---------------------------------------------------------------------------


def wants_documents(req: IntakeRequest) -> bool:
    return WANT_SAMPLE in req.wants or WANT_CV in req.wants


def has_history(session: Session, request_id: uuid.UUID, action: str) -> bool:
    return (
        session.scalar(
            select(RequestHistory.id)
            .where(RequestHistory.request_id == request_id, RequestHistory.action == action)
            .limit(1)
        )
        is not None
    )


def documents_sent(session: Session, request_id: uuid.UUID) -> bool:
    return has_history(session, request_id, SENT_ACTION)


def request_submitted(session: Session, req: IntakeRequest) -> None:
    """Queue the documents for the end of the wait (the expert may accept sooner)."""
    if not wants_documents(req):
        return
    wait = dt.timedelta(minutes=get_settings().documents_wait_minutes)
    outbox.enqueue(
        session,
        DOCUMENTS_KIND,
        {"request_id": str(req.id)},
        due_at=(req.received_at or now()) + wait,
        dedup_key=f"docs:{req.id}:wait",
    )


def expert_assigned(session: Session, req: IntakeRequest, expert_id: uuid.UUID) -> None:
    """An expert accepted the request: the documents go now, unless they went already."""
    if not wants_documents(req) or documents_sent(session, req.id):
        return
    outbox.enqueue(
        session,
        DOCUMENTS_KIND,
        {"request_id": str(req.id)},
        dedup_key=f"docs:{req.id}:assigned:{expert_id}",
    )


def cancel_pending_documents(session: Session, request_id: uuid.UUID) -> int:
    """After sending: the other trigger's row, still pending, is cancelled (it would be a no-op)."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.kind == DOCUMENTS_KIND,
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.dedup_key.like(f"docs:{request_id}:%"),
        )
        .values(status=OutboxStatus.cancelled, updated_at=now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# Documents: which ------------------------------------------------------------------------


def region_of(session: Session, req: IntakeRequest) -> str | None:
    if req.region_code:
        return req.region_code
    country = session.get(Country, req.country_of_origin)
    return country.region_code if country is not None else None


@dataclass(frozen=True)
class _Sample:
    """What the best-match rule reads of a sample report."""

    id: uuid.UUID
    country_code: str | None
    region_code: str | None
    created_at: dt.datetime


def _samples(session: Session, *where: ColumnElement[bool]) -> list[_Sample]:
    rows = session.execute(
        select(Document.id, Document.country_code, Document.region_code, Document.created_at)
        .where(Document.kind == DocumentKind.sample_report, *where)
        .order_by(Document.created_at.desc(), Document.id)
    ).all()
    return [_Sample(*row) for row in rows]


def _tier(sample: _Sample, country_code: str, region_code: str | None) -> int | None:
    """0: tagged with the country; 1: with its region (and no country); 2: general."""
    if sample.country_code == country_code:
        return 0
    if sample.country_code is None:
        if region_code and sample.region_code == region_code:
            return 1
        if sample.region_code is None:
            return 2
    return None


def _pick(
    samples: Sequence[_Sample], country_code: str, region_code: str | None
) -> uuid.UUID | None:
    """The one best-match rule, for sending and for the admins' coverage lists alike: the first
    tier that has one, the newest in it (``samples`` come newest first, then by id)."""
    best: tuple[int, uuid.UUID] | None = None
    for sample in samples:
        tier = _tier(sample, country_code.upper(), region_code)
        if tier is not None and (best is None or tier < best[0]):
            best = (tier, sample.id)
    return best[1] if best is not None else None


def best_sample_report_id(
    session: Session, *, country_code: str, region_code: str | None
) -> uuid.UUID | None:
    """Tagged with the country, else its region (and no country), else general (untagged); the
    newest in that tier. Reads only the sample reports of those tiers."""
    tiers: list[ColumnElement[bool]] = [Document.country_code == country_code.upper()]
    if region_code:
        tiers.append(and_(Document.region_code == region_code, Document.country_code.is_(None)))
    tiers.append(and_(Document.country_code.is_(None), Document.region_code.is_(None)))
    return _pick(_samples(session, or_(*tiers)), country_code, region_code)


def best_sample_report(session: Session, req: IntakeRequest) -> Document | None:
    """Country of origin, else region, else general (untagged); the newest in that tier."""
    found = best_sample_report_id(
        session, country_code=req.country_of_origin or "", region_code=region_of(session, req)
    )
    return session.get(Document, found) if found is not None else None


def sample_report_coverage(
    session: Session, countries: Iterable[tuple[str, str | None]]
) -> dict[str, uuid.UUID | None]:
    """For each (country, its region): the sample report a request from there would get now
    (``best_sample_report_id``'s rule), or None. One statement for every country at once."""
    samples = _samples(session)
    return {code: _pick(samples, code, region) for code, region in countries}


def accepted_expert(session: Session, req: IntakeRequest) -> uuid.UUID | None:
    return session.scalar(
        select(Assignment.expert_id)
        .where(Assignment.request_id == req.id, Assignment.status == AssignmentStatus.accepted)
        .order_by(Assignment.id.desc())
        .limit(1)
    )


def _cv_of(session: Session, expert_id: uuid.UUID | None) -> Document | None:
    if expert_id is None:
        return None
    profile = session.get(ExpertProfile, expert_id)
    if profile is None or profile.cv_document_id is None:
        return None
    return session.get(Document, profile.cv_document_id)


@dataclass
class CvChoice:
    document: Document | None
    source: str  # "assigned_expert", "region_lead" or "none"


def cv_for(session: Session, req: IntakeRequest) -> CvChoice:
    """The CV of the expert who accepted the request, else of the region's lead."""
    doc = _cv_of(session, accepted_expert(session, req))
    if doc is not None:
        return CvChoice(doc, "assigned_expert")
    region_code = region_of(session, req)
    region = session.get(Region, region_code) if region_code else None
    doc = _cv_of(session, region.lead_expert_id if region is not None else None)
    if doc is not None:
        return CvChoice(doc, "region_lead")
    return CvChoice(None, "none")


def alert_staff_missing(
    session: Session, req: IntakeRequest, missing: Sequence[str], outbox_id: int, *, sent: bool
) -> int:
    """One alert per active staff user naming the reference and what was missing (and whether
    the rest was sent): never a silent skip."""
    staff = session.scalars(
        select(User.id).where(User.role == Role.staff, User.is_active.is_(True)).order_by(User.id)
    ).all()
    for user_id in staff:
        outbox.enqueue(
            session,
            MISSING_ALERT_KIND,
            {
                "request_id": str(req.id),
                "user_id": str(user_id),
                "missing": list(missing),
                "sent": sent,
            },
            dedup_key=f"{MISSING_ALERT_KIND}:{outbox_id}:{user_id}",
        )
    if not staff:
        log.error("documents_missing_no_staff", reference=req.reference, missing=list(missing))
    return len(staff)


# Sample reports (admins) ---------------------------------------------------------------------


def upload_sample_report(
    session: Session,
    *,
    data: bytes,
    filename: str | None,
    uploaded_by: uuid.UUID,
    country_code: str | None,
    region_code: str | None,
) -> Document:
    """Through the documents module; tagged with a country, a region, or neither (general)."""
    country = country_code.strip().upper() if country_code and country_code.strip() else None
    region = region_code.strip() if region_code and region_code.strip() else None
    if country and region:
        raise BadSampleReportTag("Tag a sample report with a country or a region, not both.")
    if country and (len(country) != 2 or not country.isalpha() or not country.isascii()):
        raise BadSampleReportTag("country_code is two letters (ISO 3166-1 alpha-2).")
    if region and session.get(Region, region) is None:
        raise BadSampleReportTag(f"No region {region!r}.", details={"region_code": region})
    return documents.store(
        session,
        data=data,
        filename=filename,
        kind=DocumentKind.sample_report,
        uploaded_by=uploaded_by,
        country_code=country,
        region_code=region,
    )


def list_sample_reports(session: Session) -> Sequence[Document]:
    return session.scalars(
        select(Document)
        .where(Document.kind == DocumentKind.sample_report)
        .order_by(Document.country_code, Document.region_code, Document.created_at.desc())
        # A list never needs the bytes (stored in the database, they would all be read).
        .options(defer(Document.data))
    ).all()


def delete_sample_report(session: Session, document_id: uuid.UUID) -> None:
    doc = session.get(Document, document_id)
    if doc is None or doc.kind != DocumentKind.sample_report:
        raise SampleReportNotFound("No sample report with this id.")
    session.delete(doc)
    session.flush()
    log.info("sample_report_deleted", document_id=str(document_id))


# Consultation reminders ------------------------------------------------------------------


def _reminder_prefix(consultation_id: uuid.UUID) -> str:
    return f"reminder:{consultation_id}:"


def reminder_key(c: Consultation, to: str, offset_minutes: int) -> str:
    start = int(c.start_at.timestamp())
    return f"{_reminder_prefix(c.id)}{c.ical_sequence}:{start}:{c.expert_id}:{to}:{offset_minutes}"


def sync_reminders(session: Session, c: Consultation) -> int:
    """Bring the consultation's pending reminders in line with it: cancel the ones for another
    time, sequence or expert (or all, once it is cancelled), queue the missing ones (not those
    whose time has passed). Returns how many were queued."""
    current = now()
    wanted: dict[str, tuple[str, int, dt.datetime]] = {}
    if c.status == ConsultationStatus.booked:
        for offset in REMINDER_OFFSETS_MINUTES:
            due = c.start_at - dt.timedelta(minutes=offset)
            if due <= current:
                continue
            for to in ("requester", "expert"):
                wanted[reminder_key(c, to, offset)] = (to, offset, due)
    stale = (
        update(OutboxMessage)
        .where(
            OutboxMessage.kind == REMINDER_KIND,
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.dedup_key.like(f"{_reminder_prefix(c.id)}%"),
        )
        .values(status=OutboxStatus.cancelled, updated_at=current)
        .execution_options(synchronize_session=False)
    )
    if wanted:
        stale = stale.where(OutboxMessage.dedup_key.not_in(list(wanted)))
    session.execute(stale)
    queued = 0
    for key, (to, offset, due) in wanted.items():
        row = outbox.enqueue(
            session,
            REMINDER_KIND,
            {
                "consultation_id": str(c.id),
                "to": to,
                "expert_id": str(c.expert_id),
                "start_at": c.start_at.isoformat(),
                "offset_minutes": offset,
            },
            due_at=due,
            dedup_key=key,
        )
        queued += row is not None
    return queued
