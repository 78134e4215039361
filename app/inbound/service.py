"""Inbound e-mail: one way in for both the IMAP poller and the webhook (``take_message``).

A message is, in this order:
- a duplicate (its Message-ID is stored already as taken, or it was set aside before) - nothing;
- our own mail coming back (a Message-ID the service sent) - set aside;
- a delivery-status report - attached to the request of the message it reports on (``dsn``);
  one about mail we never sent is set aside;
- an auto-reply, list mail, a read receipt, a bounce, our own mail or a loop (``hygiene``) - set
  aside: never a request, never answered, never counted on a request's clock; a trace for staff
  (``set_aside``), linked to the request whose thread it answers;
- a reply on a request (``threading``) - a ``RequestMessage(inbound, requester)`` and a history
  row; the clock is neither restarted nor stopped;
- else a new request with ``source = email``: country and language unknown, so it waits in
  triage (not routed) and on-duty staff are alerted; the clock starts when the mailbox received
  it. The sender gets an acknowledgement (capped per sender per day) that lists the attachments
  that were left out, unless the message asks for no automatic answer
  (``hygiene.ack_suppression``: ``X-Auto-Response-Suppress: All``): then the request opens and
  its clock runs, and the history says why nothing was sent.

What the IMAP poller reads that is not an e-mail at all is set aside as ``unreadable`` (the
webhook answers 422 instead, so the provider knows). Staff can open a set-aside message as a
request (``open_set_aside``).

Everything personal (address, name, subject, body, attachment names) is encrypted with the
request's data key; attachments are stored through ``app.documents`` already encrypted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.security import REQUESTER_TOKEN_PREFIX, hash_token, new_token
from app.core.settings import get_settings
from app.core.time import now
from app.documents import service as documents
from app.inbound import dsn, hygiene, parsing, set_aside, threading
from app.inbound.errors import (
    AttachmentNotFound,
    InvalidMessage,
    InvalidTriage,
    SetAsideNotFound,
    SetAsideNotOpenable,
)
from app.intake import keys
from app.intake import records as intake
from app.models import (
    CaseStage,
    ContactChannel,
    Country,
    DeliveryState,
    Document,
    DocumentKind,
    FlaggedAddress,
    InboundAckCount,
    InboundSetAside,
    IntakeRequest,
    MessageDirection,
    MessageKind,
    RequestContact,
    RequesterType,
    RequestMessage,
    RequestSource,
    RequestStatus,
    SetAsideReason,
    User,
)
from app.models.messages import MESSAGE_SEAL_KIND as SEAL_KIND
from app.outbox import service as outbox
from app.reference.service import iso_countries
from app.routing.assignments import on_duty_staff
from app.sla import service as sla

log = structlog.get_logger(__name__)

ACK_KIND = "inbound.ack"
TRIAGE_ALERT_KIND = "inbound.triage_alert"
BOUNCE_NOTICE_KIND = "inbound.bounce_notice"
ATTACHMENT_SEAL_KIND = "attachment"
#: Language of a request whose language nobody has told us yet (BCP 47 "undetermined").
UNKNOWN_LANGUAGE = "und"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Outcome:
    #: created | follow_up | reply | delivery_report | set_aside | duplicate
    action: str
    reference: str | None = None
    reason: str | None = None
    message_id: str | None = None


def take_message(
    session: Session, raw: bytes, *, received_at: dt.datetime | None = None, via: str = "webhook"
) -> Outcome:
    """Take one RFC 822 message. ``received_at``: when the mailbox got it, if the caller knows
    (IMAP INTERNALDATE); the topmost ``Received`` header wins over it, ``Date`` comes after.
    Safe to call twice with the same message: the second call is a ``duplicate``. A request
    it opens (``created``, ``follow_up``) then goes through the submitted flow: callers go
    through ``app.flows.request.inbound_message``."""
    settings = get_settings()
    try:
        parsed = parsing.parse(
            raw,
            max_attachment_bytes=settings.document_max_bytes,
            max_message_bytes=settings.inbound_max_message_bytes,
        )
    except InvalidMessage as exc:
        if via == "webhook":
            raise  # 422: the provider sees it was refused
        return _unreadable(session, raw, received_at, via, exc)
    stored = session.scalar(
        select(RequestMessage.direction).where(RequestMessage.message_id == parsed.message_id)
    )
    if stored == MessageDirection.inbound:
        log.info("inbound_duplicate", via=via, reason="taken_before")
        return Outcome("duplicate", reason="taken_before")
    if set_aside.exists(session, parsed.message_id):
        log.info("inbound_duplicate", via=via, reason="set_aside_before")
        return Outcome("duplicate", reason="set_aside_before")
    verdict = hygiene.classify(
        parsed.msg, parsed.sender, settings, sent_by_us=stored == MessageDirection.outbound
    )
    at = clock_start(parsed, received_at)
    try:
        with session.begin_nested():
            if verdict.verdict == hygiene.Verdict.delivery_report:
                outcome = _delivery_report(session, parsed, raw, at, via)
            elif verdict.set_aside:
                outcome = _set_aside(session, parsed, raw, verdict, at, via)
            else:
                outcome = _take(
                    session, parsed, at, via, no_ack=hygiene.ack_suppression(parsed.msg)
                )
    except IntegrityError:
        # The same message taken at the same moment by another process: it won. Anything
        # else is a real failure (the caller must not mark the message as taken).
        winner = session.scalar(
            select(RequestMessage.id).where(RequestMessage.message_id == parsed.message_id)
        )
        if winner is None and not set_aside.exists(session, parsed.message_id):
            raise
        log.info("inbound_duplicate", via=via, reason="concurrent")
        return Outcome("duplicate", reason="taken_concurrently")
    log.info(
        "inbound_taken",
        via=via,
        action=outcome.action,
        reason=outcome.reason,
        reference=outcome.reference,
    )
    return outcome


def clock_start(parsed: parsing.Parsed, received_at: dt.datetime | None) -> dt.datetime:
    """When the mailbox received it: the Received header's date, else the caller's time, else
    Date, else now; never in the future."""
    current = now()
    at = parsed.received_header_at or received_at or parsed.date_at or current
    return min(at.astimezone(dt.UTC), current)


# A message from a person -------------------------------------------------------------------


def _take(
    session: Session,
    parsed: parsing.Parsed,
    at: dt.datetime,
    via: str,
    *,
    no_ack: str | None = None,
) -> Outcome:
    """A person's message. ``no_ack``: why a new request gets no acknowledgement, if so."""
    assert parsed.sender is not None
    lookup = keys.email_lookup(session, parsed.sender)
    match = threading.find(
        session, thread_ids=parsed.thread_ids, subject=parsed.subject, sender_lookup=lookup
    )
    if match.request is not None and match.how in ("headers", "subject"):
        return _reply(session, match.request, parsed, lookup, at, via, match.how, no_ack=no_ack)
    follow_up_of = match.request if match.how == "follow_up" else None
    return _new_request(session, parsed, lookup, at, via, follow_up_of, no_ack=no_ack)


# Mail that is not a person writing ------------------------------------------------------------


def _set_aside(
    session: Session,
    parsed: parsing.Parsed,
    raw: bytes,
    verdict: hygiene.Classification,
    at: dt.datetime,
    via: str,
) -> Outcome:
    """Keep a trace (and an encrypted copy) instead of a request; an answer to one of our
    threads is linked to that request, never taken as its requester's message."""
    lookup = keys.email_lookup(session, parsed.sender) if parsed.sender else None
    linked = None
    if lookup is not None:
        match = threading.find(
            session, thread_ids=parsed.thread_ids, subject=parsed.subject, sender_lookup=lookup
        )
        if match.how in ("headers", "subject") and match.request is not None:
            # An erased request keeps nothing of its sender: no link to it either.
            linked = match.request if match.request.data_key_enc is not None else None
    _record(
        session,
        parsed,
        raw,
        SetAsideReason(verdict.verdict.value),
        verdict.reason,
        at,
        via,
        lookup=lookup,
        linked=linked,
    )
    return Outcome(
        "set_aside",
        reference=linked.reference if linked is not None else None,
        reason=verdict.verdict.value,
        message_id=parsed.message_id,
    )


def _record(
    session: Session,
    parsed: parsing.Parsed,
    raw: bytes,
    reason: SetAsideReason,
    detail: str,
    at: dt.datetime,
    via: str,
    *,
    lookup: str | None,
    linked: IntakeRequest | None = None,
) -> InboundSetAside:
    return set_aside.record(
        session,
        raw=raw,
        message_id=parsed.message_id,
        reason=reason,
        detail=detail,
        received_at=at,
        via=via,
        sender=parsed.sender,
        sender_name=parsed.sender_name,
        subject=parsed.subject,
        date_at=parsed.date_at,
        sender_lookup=lookup,
        request=linked,
    )


def _unreadable(
    session: Session, raw: bytes, received_at: dt.datetime | None, via: str, exc: InvalidMessage
) -> Outcome:
    """Something the poller read that is not an e-mail: a trace, so it is not lost silently
    (the mailbox keeps the original)."""
    message_id = f"sha256-{hashlib.sha256(raw).hexdigest()}@inbound.invalid"
    if set_aside.exists(session, message_id):
        return Outcome("duplicate", reason="set_aside_before")
    detail = exc.fields[0].message if exc.fields else "not an e-mail"
    set_aside.record(
        session,
        raw=raw,
        message_id=message_id,
        reason=SetAsideReason.unreadable,
        detail=detail,
        received_at=min(received_at or now(), now()),
        via=via,
        sender=None,
        keep_raw=False,
    )
    log.warning("inbound_unreadable", via=via, size=len(raw))
    return Outcome("set_aside", reason=SetAsideReason.unreadable.value)


def _store_attachments(
    session: Session, req: IntakeRequest, dk: bytes, parsed: parsing.Parsed
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for att in parsed.attachments:
        entry: dict[str, Any] = {
            "filename": att.filename,
            "content_type": att.content_type,
            "size": att.size,
            "document_id": None,
            "refused": att.refused,
        }
        if att.refused is None:
            doc = documents.store_sealed(
                session,
                sealed=keys.seal(dk, ATTACHMENT_SEAL_KIND, req.id, att.data),
                content_type=att.content_type,
                kind=DocumentKind.attachment,
            )
            entry["document_id"] = str(doc.id)
        out.append(entry)
    return out


def _message_row(
    session: Session,
    req: IntakeRequest,
    dk: bytes,
    parsed: parsing.Parsed,
    lookup: str | None,
    at: dt.datetime,
    kind: MessageKind,
    data: dict[str, Any],
) -> RequestMessage:
    row = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.inbound,
        kind=kind,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        sender_lookup=lookup,
        at=at,
        recorded_at=now(),
        data_enc=keys.seal_json(dk, SEAL_KIND, req.id, data),
    )
    session.add(row)
    session.flush()
    return row


def _person_data(
    session: Session, req: IntakeRequest, dk: bytes, parsed: parsing.Parsed
) -> dict[str, Any]:
    return {
        "from": parsed.sender,
        "from_name": parsed.sender_name,
        "to": parsed.to,
        "subject": parsed.subject,
        "body": parsed.body,
        "size": parsed.raw_size,
        "attachments": _store_attachments(session, req, dk, parsed),
    }


def _refused(attachments: list[dict[str, Any]]) -> int:
    return sum(1 for a in attachments if a["refused"])


def _reply(
    session: Session,
    req: IntakeRequest,
    parsed: parsing.Parsed,
    lookup: str,
    at: dt.datetime,
    via: str,
    how: str,
    *,
    no_ack: str | None = None,
) -> Outcome:
    """The requester wrote again: shown on the case; the clock is left alone."""
    dk = keys.data_key(req)
    if dk is None:  # erased: keep nothing personal, open a fresh request instead
        return _new_request(session, parsed, lookup, at, via, None, no_ack=no_ack)
    data = _person_data(session, req, dk, parsed)
    row = _message_row(session, req, dk, parsed, lookup, at, MessageKind.requester, data)
    intake.add_history(
        session,
        req,
        actor="requester",
        action="requester_message",
        details={
            "message_row_id": row.id,
            "via": via,
            "threaded_by": how,
            "attachments": len(data["attachments"]),
            "attachments_refused": _refused(data["attachments"]),
        },
        at=now(),
    )
    session.flush()
    return Outcome("reply", reference=req.reference, message_id=parsed.message_id)


def _new_reference(session: Session) -> str:
    for _ in range(10):
        ref = intake.new_reference()
        if session.scalar(select(IntakeRequest.id).where(IntakeRequest.reference == ref)) is None:
            return ref
    raise RuntimeError("could not draw a free reference")  # pragma: no cover


def _new_request(
    session: Session,
    parsed: parsing.Parsed,
    lookup: str,
    at: dt.datetime,
    via: str,
    follow_up_of: IntakeRequest | None,
    *,
    no_ack: str | None = None,
) -> Outcome:
    current = now()
    summary = "\n\n".join(part for part in (parsed.subject, parsed.body) if part)
    pii = {
        "full_name": parsed.sender_name or parsed.sender,
        "contact_name": None,
        "law_firm_name": None,
        "email": parsed.sender,
        "phone": None,
        "whatsapp": None,
        "case_summary": summary,
    }
    req, dk = open_untriaged_request(
        session,
        source=RequestSource.email,
        preferred_channel=ContactChannel.email,
        pii=pii,
        at=at,
        via=via,
        email_lookup=lookup,
        follow_up_of=follow_up_of,
        follow_up_reason="its reference in the subject, from another sender",
    )
    data = _person_data(session, req, dk, parsed)
    row = _message_row(session, req, dk, parsed, lookup, at, MessageKind.requester, data)
    if no_ack is None:
        _acknowledge(session, req, lookup, row, current)
    else:
        # The sender asked for no automatic answer (or staff opened it by hand): the request
        # opens and its clock runs; a person answers.
        intake.add_history(
            session,
            req,
            actor="system",
            action="ack_suppressed",
            details={"reason": no_ack},
            at=current,
        )
    alert_triage(session, req)
    session.flush()
    return Outcome(
        "follow_up" if follow_up_of is not None else "created",
        reference=req.reference,
        message_id=parsed.message_id,
    )


def open_untriaged_request(
    session: Session,
    *,
    source: RequestSource,
    preferred_channel: ContactChannel,
    pii: dict[str, Any],
    at: dt.datetime,
    via: str,
    email_lookup: str | None,
    follow_up_of: IntakeRequest | None = None,
    follow_up_reason: str = "",
) -> tuple[IntakeRequest, bytes]:
    """A request that arrived as a message (e-mail, WhatsApp): country and language unknown, so
    it waits in triage; its clock runs from ``at``, when the message arrived. Returns it with its
    data key (for the message and attachments the caller stores)."""
    settings = get_settings()
    current = now()
    request_id = uuid.uuid4()
    dk, dk_id, dk_wrapped = keys.new_data_key(request_id)
    token = new_token(REQUESTER_TOKEN_PREFIX)
    req = IntakeRequest(
        id=request_id,
        reference=_new_reference(session),
        status=RequestStatus.new,
        source=source,
        requester_type=RequesterType.applicant,
        preferred_channel=preferred_channel,
        country_of_origin=None,
        country_of_residence=None,
        region_code=None,
        case_stage=CaseStage.other,
        deadline=None,
        topics=[],
        wants=[],
        consent_updates=[],
        language=UNKNOWN_LANGUAGE,
        timezone="UTC",
        # Nothing is known of the sender's situation: messages to them use neutral texts.
        discreet=True,
        privacy_notice_version=settings.privacy_notice_version,
        consent_given_at=at,
        received_at=at,
        sla_minutes=settings.sla_first_response_minutes,
        first_response_due_at=at + dt.timedelta(minutes=settings.sla_first_response_minutes),
        linked_request_id=follow_up_of.id if follow_up_of is not None else None,
        data_key_enc=dk_wrapped,
        data_key_id=dk_id,
        pii_enc=keys.seal_json(dk, "pii", request_id, pii),
        email_lookup=email_lookup,
        token_hash=hash_token(token),
        token_enc=keys.seal(dk, "token", request_id, token.encode()),
    )
    session.add(req)
    session.flush()
    intake.add_history(
        session,
        req,
        actor="requester",
        action="submitted",
        to_status=RequestStatus.new,
        details={"source": source.value, "via": via, "triage": True},
        at=current,
    )
    if follow_up_of is not None:
        intake.add_history(
            session,
            req,
            actor="system",
            action="possible_follow_up",
            details={
                "linked_request_id": str(follow_up_of.id),
                "reference": follow_up_of.reference,
                "reason": follow_up_reason,
            },
            at=current,
        )
    return req, dk


def _acknowledge(
    session: Session,
    req: IntakeRequest,
    lookup: str,
    row: RequestMessage,
    current: dt.datetime,
) -> bool:
    """Queue the acknowledgement unless the sender had the day's share already or their
    address is flagged as undeliverable; a history row says which."""
    cap = get_settings().inbound_ack_daily_cap
    if session.get(FlaggedAddress, lookup) is not None:
        intake.add_history(
            session, req, actor="system", action="ack_skipped", details={"reason": "flagged"}
        )
        return False
    day = current.astimezone(dt.UTC).date()
    # Insert-if-missing in one statement, then lock the row: two messages from one sender at
    # once count one after the other instead of failing on the primary key.
    insert_fn = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert_fn(InboundAckCount)
        .values(sender_lookup=lookup, day=day, count=0)
        .on_conflict_do_nothing(index_elements=["sender_lookup", "day"])
    )
    counter = session.get(
        InboundAckCount, (lookup, day), with_for_update=True, populate_existing=True
    )
    assert counter is not None
    if counter.count >= cap:
        intake.add_history(
            session, req, actor="system", action="ack_capped", details={"cap": cap}, at=current
        )
        return False
    counter.count += 1
    intake.add_history(session, req, actor="system", action="ack_queued", at=current)
    outbox.enqueue(session, ACK_KIND, {"request_id": str(req.id), "message_row_id": row.id})
    return True


def alert_triage(session: Session, req: IntakeRequest) -> int:
    """Every on-duty staff user is told a request waits in triage (reference only)."""
    people = on_duty_staff(session)
    for user in people:
        outbox.enqueue(
            session,
            TRIAGE_ALERT_KIND,
            {"request_id": str(req.id), "user_id": str(user.id)},
            dedup_key=f"{TRIAGE_ALERT_KIND}:{req.id}:{user.id}",
        )
    if not people:
        log.error("inbound_no_staff_on_duty", reference=req.reference)
    return len(people)


# Delivery-status reports -------------------------------------------------------------------


def _delivery_report(
    session: Session, parsed: parsing.Parsed, raw: bytes, at: dt.datetime, via: str
) -> Outcome:
    report = dsn.read(parsed.msg)
    original_id = report.original_message_id
    original = (
        session.scalar(select(RequestMessage).where(RequestMessage.message_id == original_id))
        if original_id
        else None
    )
    req = (
        session.get(IntakeRequest, original.request_id)
        if original is not None and original.direction == MessageDirection.outbound
        else None
    )
    if original is None or req is None:
        reason = SetAsideReason.delivery_report_unmatched
        detail = "report-type=delivery-status about a message the service did not send"
        _record(session, parsed, raw, reason, detail, at, via, lookup=None)
        return Outcome("set_aside", reason=reason.value, message_id=parsed.message_id)
    dk = keys.data_key(req)
    data = {
        "recipients": [r.__dict__ for r in report.recipients],
        "status": report.status,
        "subject": parsed.subject,
    }
    row = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.inbound,
        kind=MessageKind.delivery_report,
        message_id=parsed.message_id,
        in_reply_to=original.message_id,
        at=at,
        recorded_at=now(),
        data_enc=keys.seal_json(dk, SEAL_KIND, req.id, data) if dk is not None else None,
    )
    session.add(row)
    session.flush()
    permanent = report.permanent
    intake.add_history(
        session,
        req,
        actor="system",
        action="delivery_report",
        details={
            "message_row_id": row.id,
            "bounced_message_row_id": original.id,
            "bounced_kind": original.kind.value,
            "status": report.status,
            "permanent": permanent,
        },
    )
    if permanent:
        original.delivery = DeliveryState.bounced
        addresses = [r.address for r in report.recipients if r.permanent and r.address]
        lookups = [keys.email_lookup(session, a) for a in addresses] or (
            [req.email_lookup] if req.email_lookup else []
        )
        for lookup in dict.fromkeys(lookups):
            flag_address(session, lookup, report.status)
        if original.kind == MessageKind.reply and original.contact_id is not None:
            _reply_bounced(session, req, original)
    session.flush()
    return Outcome("delivery_report", reference=req.reference, reason=report.status)


def flag_address(session: Session, lookup: str, status: str) -> FlaggedAddress:
    flagged = session.get(FlaggedAddress, lookup, with_for_update=True)
    if flagged is None:
        flagged = FlaggedAddress(email_lookup=lookup, flagged_at=now(), status=status, failures=1)
        session.add(flagged)
    else:
        flagged.failures += 1
        flagged.status = status
    return flagged


def _reply_bounced(session: Session, req: IntakeRequest, original: RequestMessage) -> None:
    contact = session.get(RequestContact, original.contact_id)
    if contact is None:
        return
    sla.reply_bounced(session, req, contact, at=now())
    author = original.author_id or contact.recorded_by
    if author is not None:
        outbox.enqueue(
            session,
            BOUNCE_NOTICE_KIND,
            {"request_id": str(req.id), "user_id": str(author), "message_row_id": original.id},
            dedup_key=f"{BOUNCE_NOTICE_KIND}:{original.id}",
        )


# Opening a set-aside message ---------------------------------------------------------------

OPENED_BY_STAFF = "opened by staff from mail set aside"


def open_set_aside(session: Session, set_aside_id: uuid.UUID, by_user: User) -> Outcome:
    """Staff judged a set-aside message to be a person's: take it as one, from its encrypted
    copy. It threads onto its request like any reply, or opens a request whose clock runs from
    when the mailbox received it (the wait was real); no acknowledgement goes out, since staff
    are answering it. The copy is dropped (the request holds it now, under its own key)."""
    row = session.get(InboundSetAside, set_aside_id, with_for_update=True)
    if row is None:
        raise SetAsideNotFound()
    if row.opened_at is not None:
        raise SetAsideNotOpenable("It was opened already.")
    if row.reason in (SetAsideReason.own_mail, SetAsideReason.unreadable):
        raise SetAsideNotOpenable(f"A message set aside as {row.reason.value} cannot be opened.")
    raw = set_aside.reveal_raw(row)
    if raw is None:
        raise SetAsideNotOpenable(
            "No copy of it was kept (too large), or it can no longer be read."
        )
    settings = get_settings()
    parsed = parsing.parse(
        raw,
        max_attachment_bytes=settings.document_max_bytes,
        max_message_bytes=settings.inbound_max_message_bytes,
    )
    taken = session.scalar(
        select(RequestMessage.id).where(RequestMessage.message_id == parsed.message_id)
    )
    if taken is not None:
        raise SetAsideNotOpenable("The same message was taken on a request already.")
    outcome = _take(session, parsed, row.received_at, "set_aside", no_ack=OPENED_BY_STAFF)
    req = intake.get_by_reference(session, outcome.reference or "")
    assert req is not None
    intake.add_history(
        session,
        req,
        actor=f"user:{by_user.id}",
        action="opened_from_set_aside",
        details={"set_aside_id": str(row.id), "reason": row.reason.value},
    )
    row.opened_at = now()
    row.opened_by = by_user.id
    row.request_id = req.id
    row.raw_enc = None
    session.flush()
    audit.record(
        session,
        action="inbound.set_aside.open",
        actor=str(by_user.id),
        actor_role=by_user.role.value,
        target=str(row.id),
        details={"reason": row.reason.value, "reference": req.reference, "as": outcome.action},
    )
    log.info("inbound_set_aside_opened", reference=req.reference, action=outcome.action)
    return outcome


# Triage ------------------------------------------------------------------------------------


def _country(field: str, value: str) -> str:
    code = value.strip().upper()
    if code not in iso_countries():
        raise InvalidTriage(field, "is not a known ISO 3166-1 alpha-2 country code")
    return code


def complete_email_request(
    session: Session,
    req: IntakeRequest,
    *,
    country_of_origin: str,
    country_of_residence: str,
    language: str,
    by_user: User,
) -> IntakeRequest:
    """Staff fill in what an e-mail did not say; the request then goes through routing like
    one from the form (``app.flows.request.complete_email_request``)."""
    origin = _country("country_of_origin", country_of_origin)
    residence = _country("country_of_residence", country_of_residence)
    lang = language.strip()
    if not _LANGUAGE.match(lang):
        raise InvalidTriage("language", "is not a language tag such as 'en' or 'pt-BR'")
    before = {
        "country_of_origin": req.country_of_origin,
        "country_of_residence": req.country_of_residence,
        "language": req.language,
    }
    req.country_of_origin = origin
    req.country_of_residence = residence
    req.language = lang
    req.region_code = session.scalar(select(Country.region_code).where(Country.code == origin))
    actor = f"user:{by_user.id}"
    intake.add_history(
        session,
        req,
        actor=actor,
        action="triage_completed",
        details={
            "before": before,
            "country_of_origin": origin,
            "country_of_residence": residence,
            "language": lang,
            "region_code": req.region_code,
        },
    )
    session.flush()
    return req


def reveal_message(req: IntakeRequest, row: RequestMessage) -> dict[str, Any] | None:
    dk = keys.data_key(req)
    if dk is None or row.data_enc is None:
        return None
    value: dict[str, Any] = keys.unseal_json(dk, SEAL_KIND, req.id, row.data_enc)
    return value


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    data: bytes


def attachment(session: Session, req: IntakeRequest, document_id: uuid.UUID) -> AttachmentFile:
    """An attachment that arrived by e-mail on this request, decrypted; 404 when the document
    is not one of this request's attachments (or the request was erased)."""
    rows = session.scalars(
        select(RequestMessage).where(
            RequestMessage.request_id == req.id,
            RequestMessage.direction == MessageDirection.inbound,
            RequestMessage.kind == MessageKind.requester,
        )
    ).all()
    for row in rows:
        data = reveal_message(req, row) or {}
        for entry in data.get("attachments", []):
            if entry.get("document_id") != str(document_id):
                continue
            doc = session.get(Document, document_id)
            if doc is None or doc.kind != DocumentKind.attachment:
                break
            plain = reveal_attachment(req, documents.read_bytes(doc))
            if plain is None:
                break
            return AttachmentFile(str(entry["filename"]), str(entry["content_type"]), plain)
    raise AttachmentNotFound("No such attachment on this request.")


def reveal_attachment(req: IntakeRequest, sealed: bytes) -> bytes | None:
    dk = keys.data_key(req)
    if dk is None:
        return None
    return keys.unseal(dk, ATTACHMENT_SEAL_KIND, req.id, sealed)
