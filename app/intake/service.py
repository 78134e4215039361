"""Applicant intake: submit, the requester's own view, link recovery, withdrawal, status moves.

Personal fields live only in the request's encrypted blob (see ``keys``); logs, history details
and outbox rows carry ids, references and non-personal facts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import BigInteger, Select, String, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.security import (
    REQUESTER_TOKEN_PREFIX,
    constant_time_equals,
    hash_token,
    new_token,
)
from app.core.settings import get_settings
from app.core.time import now
from app.intake import keys
from app.intake.errors import IdempotencyKeyReused, RequestErased, RequestNotFound
from app.intake.records import add_history, current_sla, get_by_reference, new_reference
from app.intake.schemas import (
    ExpertOut,
    Links,
    ReportTopic,
    RequestView,
    SlaOut,
    SubmitIn,
    SubmitOut,
    Want,
)
from app.intake.status import FINAL, check_move, mark_ended
from app.models import (
    ContactChannel,
    Country,
    ExpertProfile,
    IdempotencyRecord,
    IntakeRequest,
    RequestHistory,
    RequestSource,
    RequestStatus,
    User,
)
from app.models.base import UTCDateTime
from app.outbox import service as outbox

log = structlog.get_logger(__name__)

ACK_KIND = "intake.ack"
LINK_KIND = "intake.link"
#: The work that follows a submission, done by the worker: routing, reminders, documents.
SUBMITTED_KIND = "intake.submitted"
# History actions that put an e-mail to the requester's address in the outbox (counted by the
# per-address daily cap).
MAILED_ACTIONS = ("ack_queued", "link_queued")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def body_fingerprint(data: SubmitIn) -> str:
    """The same form (after normalisation) gives the same fingerprint."""
    dumped = data.model_dump(mode="json")
    return _sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")))


# Submission ------------------------------------------------------------------------------


def _links(reference: str, wants: list[str]) -> Links:
    base = get_settings().public_url
    return Links(
        status_page=f"{base}/r/{reference}",
        status_api=f"{base}/api/v1/requests/{reference}",
        booking_page=f"{base}/r/{reference}/book" if Want.consultation in wants else None,
    )


def _replay(session: Session, key_hash: str, body_hash: str) -> dict[str, Any] | None:
    record = session.get(IdempotencyRecord, key_hash)
    if record is None:
        return None
    if not constant_time_equals(record.body_hash, body_hash):
        raise IdempotencyKeyReused()
    req = session.get(IntakeRequest, record.request_id)
    dk = keys.data_key(req) if req is not None else None
    if req is None or dk is None:
        raise RequestErased("The request this key created has been erased.")
    body: dict[str, Any] = keys.unseal_json(dk, "idem", req.id, record.response_enc)
    log.info("intake_replayed", reference=req.reference)
    return body


def _mailed_today_statement(lookup: Any, since: Any) -> Select[Any]:
    return (
        select(func.count())
        .select_from(RequestHistory)
        .join(IntakeRequest, IntakeRequest.id == RequestHistory.request_id)
        .where(
            IntakeRequest.email_lookup == lookup,
            RequestHistory.action.in_(MAILED_ACTIONS),
            RequestHistory.at > since,
        )
    )


# The submission's statements are built once, with named parameters: building a statement and
# its cache key on every submission cost more than running it.
_SINCE = bindparam("since", type_=UTCDateTime())
_MAILED_TODAY = _mailed_today_statement(bindparam("lookup", type_=String()), _SINCE)
_LOCK_ADDRESS = select(func.pg_advisory_xact_lock(bindparam("lock_id", type_=BigInteger())))


def mails_to_address_today(session: Session, lookup: str, current: dt.datetime) -> int:
    since = current - dt.timedelta(days=1)
    return int(session.scalar(_MAILED_TODAY, {"lookup": lookup, "since": since}) or 0)


def lock_address(session: Session, lookup: str) -> None:
    """Serialise submissions from one address until this transaction ends, so two at the same
    moment cannot both pass the daily acknowledgement cap or both miss the earlier request to
    link to. PostgreSQL: a transaction-scoped advisory lock on 60 bits of the keyed hash (no
    address in it); SQLite already runs one writing transaction at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_ADDRESS, {"lock_id": int(lookup[:15], 16)})


@dataclass
class _Facts:
    linked_to: uuid.UUID | None
    mailed_today: int
    reference_taken: bool
    region_code: str | None


def _facts_statement() -> Select[Any]:
    lookup = bindparam("lookup", type_=String())
    root = (
        select(func.coalesce(IntakeRequest.linked_request_id, IntakeRequest.id))
        .where(
            IntakeRequest.email_lookup == lookup,
            IntakeRequest.country_of_origin == bindparam("country"),
            IntakeRequest.received_at >= bindparam("window_start", type_=UTCDateTime()),
        )
        .order_by(IntakeRequest.received_at)
        .limit(1)
        .scalar_subquery()
    )
    taken = select(IntakeRequest.id).where(IntakeRequest.reference == bindparam("reference"))
    region = select(Country.region_code).where(Country.code == bindparam("country"))
    mailed = _mailed_today_statement(lookup, _SINCE)
    return select(root, mailed.scalar_subquery(), taken.exists(), region.scalar_subquery())


_FACTS = _facts_statement()


def _facts(
    session: Session, lookup: str, country: str, reference: str, current: dt.datetime
) -> _Facts:
    """Everything a submission needs to know, in one round trip: the earlier request of the
    same address and country within the window (linking), how many e-mails the address got
    today (the cap), whether the drawn reference is taken, and the country's region."""
    window = dt.timedelta(hours=get_settings().request_link_window_hours)
    params = {
        "lookup": lookup,
        "country": country,
        "window_start": current - window,
        "reference": reference,
        "since": current - dt.timedelta(days=1),
    }
    row = session.execute(_FACTS, params).one()
    return _Facts(
        linked_to=row[0],
        mailed_today=int(row[1] or 0),
        reference_taken=bool(row[2]),
        region_code=row[3],
    )


def _mail_row(
    session: Session,
    req: IntakeRequest,
    kind: str,
    action: str,
    current: dt.datetime,
    mailed_today: int | None = None,
) -> outbox.Queued | None:
    """The outbox row of an e-mail to the requester's stored address, unless the address had
    its daily share already; either way a history row says what happened."""
    assert req.email_lookup is not None
    cap = get_settings().ack_cap_per_address_per_day
    if mailed_today is None:
        mailed_today = mails_to_address_today(session, req.email_lookup, current)
    if mailed_today >= cap:
        add_history(
            session,
            req,
            actor="system",
            action=f"{action}_capped",
            details={"cap": cap},
            at=current,
        )
        log.info("intake_mail_capped", reference=req.reference, kind=kind)
        return None
    add_history(session, req, actor="system", action=f"{action}_queued", at=current)
    # No de-duplication key: the request id is new, and a recovered link may be sent again.
    return outbox.Queued(kind, {"request_id": str(req.id)})


def queue_acknowledgement(session: Session, req: IntakeRequest) -> bool:
    """The acknowledgement e-mail queued after submission (the submitted flow, when WhatsApp
    cannot carry it); False when the address had its daily share."""
    return _queue_mail(session, req, ACK_KIND, "ack")


def _queue_mail(session: Session, req: IntakeRequest, kind: str, action: str) -> bool:
    row = _mail_row(session, req, kind, action, now())
    if row is None:
        return False
    outbox.enqueue(session, row.kind, row.params)
    return True


def submit(
    session: Session,
    data: SubmitIn,
    *,
    idempotency_key: str | None = None,
    source: RequestSource = RequestSource.form,
) -> dict[str, Any]:
    """Store a request and queue its acknowledgement. Returns the reply body (JSON-ready);
    the same ``idempotency_key`` with the same form returns the first reply again."""
    key_hash = _sha256(idempotency_key) if idempotency_key else None
    body_hash = body_fingerprint(data)
    if key_hash is not None:
        replay = _replay(session, key_hash, body_hash)
        if replay is not None:
            return replay
    lookup = keys.email_lookup(session, data.email)
    lock_address(session, lookup)
    for _attempt in range(5):
        current = now()
        reference = new_reference()
        facts = _facts(session, lookup, data.country_of_origin, reference, current)
        if facts.reference_taken:  # 40 random bits: practically never
            continue
        if key_hash is None:
            return _create(session, data, lookup, None, body_hash, source, reference, facts)
        try:
            # A savepoint only when a key is given: a concurrent submission with the same key
            # fails on the key's primary key here, and then replays the winner's reply.
            with session.begin_nested():
                return _create(session, data, lookup, key_hash, body_hash, source, reference, facts)
        except IntegrityError:
            replay = _replay(session, key_hash, body_hash)
            if replay is not None:
                return replay
    raise RuntimeError("could not store the request")  # pragma: no cover


def _create(
    session: Session,
    data: SubmitIn,
    lookup: str,
    key_hash: str | None,
    body_hash: str,
    source: RequestSource,
    reference: str,
    facts: _Facts,
) -> dict[str, Any]:
    settings = get_settings()
    current = now()
    request_id = uuid.uuid4()
    dk, dk_id, dk_wrapped = keys.new_data_key(request_id)
    token = new_token(REQUESTER_TOKEN_PREFIX)
    pii = {
        "full_name": data.full_name,
        "contact_name": data.contact_name,
        "law_firm_name": data.law_firm_name,
        "email": data.email,
        "phone": data.phone,
        "whatsapp": data.whatsapp,
        "case_summary": data.case_summary,
    }
    linked_to = facts.linked_to
    wants = [w.value for w in data.wants]
    req = IntakeRequest(
        id=request_id,
        reference=reference,
        status=RequestStatus.new,
        source=source,
        requester_type=data.requester_type,
        preferred_channel=data.preferred_channel,
        country_of_origin=data.country_of_origin,
        country_of_residence=data.country_of_residence,
        region_code=facts.region_code,
        case_stage=data.case_stage,
        deadline=data.deadline,
        topics=[t.value for t in data.topics],
        wants=wants,
        consent_updates=[t.value for t in data.consent_updates],
        language=data.language,
        timezone=data.timezone,
        discreet=data.discreet,
        privacy_notice_version=settings.privacy_notice_version,
        consent_given_at=current,
        received_at=current,
        sla_minutes=settings.sla_first_response_minutes,
        first_response_due_at=current + dt.timedelta(minutes=settings.sla_first_response_minutes),
        linked_request_id=linked_to,
        data_key_enc=dk_wrapped,
        data_key_id=dk_id,
        pii_enc=keys.seal_json(dk, "pii", request_id, pii),
        email_lookup=lookup,
        token_hash=hash_token(token),
        token_enc=keys.seal(dk, "token", request_id, token.encode()),
    )
    session.add(req)
    add_history(
        session,
        req,
        actor="requester",
        action="submitted",
        to_status=RequestStatus.new,
        details={"source": source.value, "privacy_notice_version": req.privacy_notice_version},
        at=current,
    )
    if linked_to is not None:
        add_history(
            session,
            req,
            actor="system",
            action="linked",
            details={"linked_request_id": str(linked_to)},
            at=current,
        )
    # Routing, the reminders and the documents' timer run in the worker within seconds
    # (``app/flows/request.py::submitted``): the submission itself stays a few cheap statements.
    rows = [outbox.Queued(SUBMITTED_KIND, {"request_id": str(req.id)})]
    # Who prefers WhatsApp is acknowledged there by the submitted flow, the e-mail its fallback.
    if req.preferred_channel != ContactChannel.whatsapp:
        ack = _mail_row(session, req, ACK_KIND, "ack", current, facts.mailed_today)
        if ack is not None:
            rows.append(ack)
    outbox.enqueue_many(session, rows)
    body = SubmitOut(
        reference=req.reference,
        status=req.status,
        received_at=req.received_at,
        first_response_due_at=req.first_response_due_at,
        access_token=token,
        links=_links(req.reference, wants),
    ).model_dump(mode="json")
    if key_hash is not None:
        session.add(
            IdempotencyRecord(
                key_hash=key_hash,
                body_hash=body_hash,
                request_id=req.id,
                status_code=201,
                response_enc=keys.seal_json(dk, "idem", req.id, body),
                created_at=current,
            )
        )
    session.flush()
    log.info("intake_submitted", reference=req.reference, linked=linked_to is not None)
    return body


# The requester's own request -------------------------------------------------------------


def authenticate_requester(session: Session, reference: str, token: str | None) -> IntakeRequest:
    """The request this link token opens; anything else is 404 (never 403)."""
    req = get_by_reference(session, reference)
    given = hash_token(token) if token and token.startswith(REQUESTER_TOKEN_PREFIX) else ""
    stored = req.token_hash if req is not None and req.token_hash else "-"
    if req is None or not given or not constant_time_equals(given, stored):
        raise RequestNotFound()
    audit.note_actor("requester", "requester")
    return req


def sla_out(req: IntakeRequest) -> SlaOut:
    """The first-response clock as the API shows it (requester, case, contacts)."""
    return SlaOut(
        state=current_sla(req),
        first_response_due_at=req.first_response_due_at,
        first_responded_at=req.first_responded_at,
        ended_at=req.ended_at,
    )


def requester_view(session: Session, req: IntakeRequest) -> RequestView:
    expert_name: str | None = None
    if req.assigned_expert_id is not None:
        # The expert's public name from their profile; the account's name until one exists.
        profile = session.get(ExpertProfile, req.assigned_expert_id)
        user = session.get(User, req.assigned_expert_id) if profile is None else None
        expert_name = profile.public_name if profile else (user.display_name if user else None)
    return RequestView(
        reference=req.reference,
        status=req.status,
        received_at=req.received_at,
        wants=[Want(w) for w in req.wants],
        topics=[ReportTopic(t) for t in req.topics],
        case_stage=req.case_stage,
        deadline=req.deadline,
        sla=sla_out(req),
        expert=ExpertOut(public_name=expert_name) if expert_name is not None else None,
    )


def recover_link(session: Session, reference: str, email: str) -> None:
    """E-mail the link to the stored address when reference and address match. The caller
    answers the same either way. The stored link is sent again (not a new one): this endpoint
    is anonymous, and reissuing would let anyone who knows a reference and an address break a
    working link."""
    lookup = keys.email_lookup(session, email)
    req = get_by_reference(session, reference)
    if req is None or req.email_lookup is None or req.token_enc is None:
        return
    if not constant_time_equals(req.email_lookup, lookup):
        return
    _queue_mail(session, req, LINK_KIND, "link")
    session.flush()


def change_status(
    session: Session, req: IntakeRequest, target: RequestStatus, *, actor: str
) -> IntakeRequest:
    """Move a request along the status table (409 naming the allowed moves otherwise) and
    record it. What else happens when the move ends the request (its expert freed, its
    consultation cancelled) is ``app.flows.change_status``: callers go through it."""
    check_move(req.status, target)
    before = req.status
    req.status = target
    current = now()
    if target == RequestStatus.withdrawn:
        req.withdrawn_at = current
    if target in FINAL:
        mark_ended(req, current)
    add_history(
        session,
        req,
        actor=actor,
        action="status_changed",
        from_status=before,
        to_status=target,
        at=current,
    )
    session.flush()
    log.info("intake_status_changed", reference=req.reference, status=target.value)
    return req
