"""WhatsApp as a channel: what comes in by the webhook, what staff send, the 24-hour window.

In (``receive`` at the webhook, ``process_inbox`` in the worker):
- The webhook stores the delivery as received (encrypted) and queues ``whatsapp.inbound``; the
  answer goes at once. Meta repeats deliveries: the same body is stored once.
- In the worker each message is, in order: a **replay** (its wamid is stored) - nothing; **stale**
  (older than ``INTAKE_WHATSAPP_MAX_EVENT_AGE_HOURS``) - nothing; else it opens the number's
  24-hour window and goes to a request:
  1. a reference in the text whose request has this number: that request;
  2. the open request this number wrote to before: that request;
  3. else a **new request** (``source = whatsapp``, preferred channel WhatsApp) in triage, its
     clock started at the message's timestamp, by the same path as e-mailed requests
     (``app.inbound.service.open_untriaged_request``); on-duty staff are alerted, the submitted
     flow runs in the worker (reminders, escalation), and the acknowledgement template goes
     back. A reference in the text of another number's request links the new one as a possible
     follow-up (staff judge), never joins it: a reference is not proof of who writes.
- Media are fetched there and then: type allowed, size from WhatsApp and as downloaded at most
  ``INTAKE_WHATSAPP_MEDIA_MAX_BYTES``, SHA-256 as WhatsApp gave it, first bytes matching the
  type; then sealed with the request's data key and stored as an attachment (read on the case
  like an e-mail's). A refused file is listed with why.
- Statuses move an outbound message forward only (sent < delivered < read; failed is final);
  one out of order is stale and ignored. ``failed`` marks it bounced and, when it was a reply
  that counted as the first response, un-counts it as a bounced e-mail does.

Out (``reply``, ``queue_template``): one ``request_messages`` row (the text, sealed), one
``whatsapp_messages`` row and one outbox row ``whatsapp.send`` each, with de-duplication key
``whatsapp:send:<id>``; the handler sends once (a stored wamid means sent). Free text only inside
the window; outside it the approved templates (``templates.py``) in the requester's language,
neutral ones for discreet requests. A reply from the case counts as the first response when it
is queued, like an e-mail reply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.settings import get_settings
from app.core.time import now
from app.documents import service as documents
from app.inbound import service as inbound
from app.intake import keys
from app.intake import records as intake
from app.intake.service import SUBMITTED_KIND
from app.intake.status import FINAL
from app.models import (
    ContactChannel,
    ContactVia,
    DeliveryState,
    DocumentKind,
    IntakeRequest,
    MessageDirection,
    MessageKind,
    RequestContact,
    RequestMessage,
    RequestSource,
    User,
    WhatsAppContact,
    WhatsAppInbox,
    WhatsAppMessage,
    WhatsAppStatus,
)
from app.models.messages import MESSAGE_SEAL_KIND
from app.outbox import service as outbox
from app.sla import service as sla
from app.sla.errors import RequestErased
from app.whatsapp import media, templates, webhooks
from app.whatsapp.client import WhatsAppClient
from app.whatsapp.errors import (
    InvalidWhatsAppReply,
    NoWhatsAppNumber,
    WhatsAppNotConfigured,
    WhatsAppRefused,
    WindowClosed,
)

log = structlog.get_logger(__name__)

INBOX_KIND = "whatsapp.inbound"
SEND_KIND = "whatsapp.send"
WINDOW = dt.timedelta(hours=24)
MAX_TEXT = 4096
INBOX_AAD = b"whatsapp_inbox"
_ORDER = {WhatsAppStatus.sent: 1, WhatsAppStatus.delivered: 2, WhatsAppStatus.read: 3}
_REFERENCE_CANDIDATE = re.compile(r"\b[0-9A-Za-z]{4}[- ]?[0-9A-Za-z]{4}\b")


def configured() -> bool:
    s = get_settings()
    return bool(s.whatsapp_access_token and s.whatsapp_phone_number_id)


def normalise_number(value: str | None) -> str | None:
    """Digits of an international number (E.164 without ``+``), or None."""
    if not value:
        return None
    digits = re.sub(r"[\s().\-]", "", value).removeprefix("+").removeprefix("00")
    return digits if digits.isdigit() and 7 <= len(digits) <= 15 else None


def phone_lookup(session: Session, number: str) -> str:
    """Keyed hash of a WhatsApp number (never the number), under the look-up key."""
    return keys.email_lookup(session, f"whatsapp:+{number}")


# The webhook ------------------------------------------------------------------------------


def receive(session: Session, raw_body: bytes) -> bool:
    """Store a signed delivery for the worker; False when the same body was stored before."""
    digest = hashlib.sha256(raw_body).hexdigest()
    if session.scalar(select(WhatsAppInbox.id).where(WhatsAppInbox.body_sha256 == digest)):
        return False
    key_id, sealed = crypto.encrypt_with_master(raw_body, INBOX_AAD)
    row = WhatsAppInbox(received_at=now(), body_sha256=digest, key_id=key_id, body_enc=sealed)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False  # the same delivery at the same moment: the other one stored it
    outbox.enqueue(session, INBOX_KIND, {"inbox_id": row.id}, dedup_key=f"{INBOX_KIND}:{row.id}")
    return True


# The worker: messages ------------------------------------------------------------------------


def process_inbox(session: Session, inbox_id: int, client: WhatsAppClient | None) -> dict[str, int]:
    row = session.get(WhatsAppInbox, inbox_id, with_for_update=True, populate_existing=True)
    if row is None or row.processed_at is not None or row.body_enc is None or row.key_id is None:
        return {}
    raw = crypto.decrypt_with_master(row.key_id, row.body_enc, INBOX_AAD)
    batch = webhooks.parse(raw)
    counts: dict[str, int] = {}
    for msg in sorted(batch.messages, key=lambda m: m.at):
        what = take_message(session, msg, client)
        counts[what] = counts.get(what, 0) + 1
    for status in batch.statuses:
        what = apply_status(session, status)
        counts[what] = counts.get(what, 0) + 1
    row.processed_at = now()
    row.body_enc = None  # taken: the requests hold it now, under their own keys
    row.outcome = json.dumps(counts, sort_keys=True)[:255]
    session.flush()
    log.info("whatsapp_inbox_processed", inbox_id=inbox_id, **counts)
    return counts


def take_message(session: Session, msg: webhooks.Inbound, client: WhatsAppClient | None) -> str:
    """One inbound message: replay, stale, created, follow_up or joined."""
    if session.scalar(select(WhatsAppMessage.id).where(WhatsAppMessage.wamid == msg.wamid)):
        return "replay"
    current = now()
    max_age = dt.timedelta(hours=get_settings().whatsapp_max_event_age_hours)
    if msg.at < current - max_age:
        log.info("whatsapp_stale_message", age_hours=(current - msg.at).total_seconds() // 3600)
        return "stale"
    number = normalise_number(msg.wa_id)
    if number is None:
        return "stale"
    lookup = phone_lookup(session, number)
    at = min(msg.at, current)
    contact = _contact(session, lookup)
    if contact.last_inbound_at is None or at > contact.last_inbound_at:
        contact.last_inbound_at = at
    contact.updated_at = current
    req, linked = _find_request(session, contact, msg, number)
    outcome = "joined"
    if req is None:
        req = _new_request(session, msg, number, at, linked)
        outcome = "follow_up" if linked is not None else "created"
    contact.request_id = req.id
    dk = keys.data_key(req)
    assert dk is not None  # _find_request only returns requests that were not erased
    attachments = [_store_media(session, req, dk, msg.media, client)] if msg.media else []
    row = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.inbound,
        kind=MessageKind.requester,
        message_id=None,
        sender_lookup=lookup,
        at=at,
        recorded_at=current,
        data_enc=keys.seal_json(
            dk,
            MESSAGE_SEAL_KIND,
            req.id,
            {
                "channel": "whatsapp",
                "from": f"+{number}",
                "from_name": msg.name,
                "subject": None,
                "body": msg.text or "",
                "type": msg.kind,
                "attachments": attachments,
            },
        ),
    )
    session.add(row)
    session.flush()
    session.add(
        WhatsAppMessage(
            request_id=req.id,
            request_message_id=row.id,
            wamid=msg.wamid,
            direction=MessageDirection.inbound,
            phone_lookup=lookup,
            status=WhatsAppStatus.received,
            status_at=current,
            at=at,
        )
    )
    if outcome == "joined":
        intake.add_history(
            session,
            req,
            actor="requester",
            action="requester_message",
            details={
                "message_row_id": row.id,
                "via": "whatsapp",
                "attachments": len(attachments),
                "attachments_refused": sum(1 for a in attachments if a["refused"]),
            },
            at=current,
        )
    else:
        _opened(session, req)
    session.flush()
    return outcome


def _contact(session: Session, lookup: str) -> WhatsAppContact:
    found = session.get(WhatsAppContact, lookup, with_for_update=True, populate_existing=True)
    if found is None:
        found = WhatsAppContact(phone_lookup=lookup, updated_at=now())
        session.add(found)
        session.flush()
    return found


def _usable(session: Session, req: IntakeRequest | None) -> IntakeRequest | None:
    """The request itself, or the one it was merged into, while open and not erased."""
    for _ in range(5):
        if req is None or req.data_key_enc is None:
            return None
        if req.merged_into_id is None:
            return req if req.status not in FINAL else None
        req = session.get(IntakeRequest, req.merged_into_id)
    return None


def _number_of(req: IntakeRequest) -> str | None:
    pii = intake.reveal_pii(req) or {}
    return normalise_number(pii.get("whatsapp")) or normalise_number(pii.get("phone"))


def _find_request(
    session: Session, contact: WhatsAppContact, msg: webhooks.Inbound, number: str
) -> tuple[IntakeRequest | None, IntakeRequest | None]:
    """(the request this message joins, or None; a request its text names but that is not this
    number's: a possible follow-up)."""
    linked: IntakeRequest | None = None
    for candidate in _REFERENCE_CANDIDATE.findall(msg.text or ""):
        named = intake.get_by_reference(session, candidate)
        if named is None:
            continue
        usable = _usable(session, named)
        if usable is not None and _number_of(usable) == number:
            return usable, None
        linked = named
        break
    if contact.request_id is not None:
        current = _usable(session, session.get(IntakeRequest, contact.request_id))
        if current is not None:
            return current, None
    return None, linked


def _new_request(
    session: Session,
    msg: webhooks.Inbound,
    number: str,
    at: dt.datetime,
    linked: IntakeRequest | None,
) -> IntakeRequest:
    pii = {
        "full_name": msg.name or f"+{number}",
        "contact_name": None,
        "law_firm_name": None,
        "email": None,
        "phone": None,
        "whatsapp": f"+{number}",
        "case_summary": msg.text or "",
    }
    req, _dk = inbound.open_untriaged_request(
        session,
        source=RequestSource.whatsapp,
        preferred_channel=ContactChannel.whatsapp,
        pii=pii,
        at=at,
        via="whatsapp",
        email_lookup=None,
        follow_up_of=linked,
        follow_up_reason="its reference in a WhatsApp message from another number",
    )
    return req


def _opened(session: Session, req: IntakeRequest) -> None:
    """A new request from WhatsApp: staff alerted, the submitted flow (reminders, escalation)
    in the worker, the acknowledgement back on WhatsApp."""
    inbound.alert_triage(session, req)
    outbox.enqueue(
        session, SUBMITTED_KIND, {"request_id": str(req.id)}, dedup_key=f"wa-submitted:{req.id}"
    )
    queue_template(session, req, "acknowledgement", [req.reference])


def _refused_entry(entry: dict[str, Any], reason: str) -> dict[str, Any]:
    entry["refused"] = reason
    return entry


def _store_media(
    session: Session,
    req: IntakeRequest,
    dk: bytes,
    item: webhooks.Media,
    client: WhatsAppClient | None,
) -> dict[str, Any]:
    limit = get_settings().whatsapp_media_max_bytes
    entry: dict[str, Any] = {
        "filename": item.filename or f"whatsapp-{item.kind}",
        "content_type": media.base_type(item.mime_type),
        "size": 0,
        "document_id": None,
        "refused": None,
    }
    if not media.allowed(item.mime_type):
        return _refused_entry(entry, "type")
    if client is None:
        return _refused_entry(entry, "not_connected")
    try:
        info = client.media_info(item.media_id)
        entry["size"] = info.file_size
        if info.file_size > limit:
            return _refused_entry(entry, "too_large")
        data = client.download(info.url, limit)
    except WhatsAppRefused as exc:
        return _refused_entry(entry, "too_large" if "larger" in str(exc) else "unavailable")
    entry["size"] = len(data)
    expected = item.sha256 or info.sha256
    if expected and hashlib.sha256(data).hexdigest() != expected:
        return _refused_entry(entry, "checksum")
    if not media.content_matches(item.mime_type, data):
        return _refused_entry(entry, "content")
    doc = documents.store_sealed(
        session,
        sealed=keys.seal(dk, inbound.ATTACHMENT_SEAL_KIND, req.id, data),
        content_type=entry["content_type"],
        kind=DocumentKind.attachment,
    )
    entry["document_id"] = str(doc.id)
    return entry


# The worker: statuses ------------------------------------------------------------------------


def apply_status(session: Session, st: webhooks.Status) -> str:
    wm = session.scalar(
        select(WhatsAppMessage).where(WhatsAppMessage.wamid == st.wamid).with_for_update()
    )
    if wm is None and st.callback and st.callback.startswith("wm:"):
        # The send's answer never reached us, but Meta echoes our callback data.
        found = session.get(WhatsAppMessage, int(st.callback[3:]), with_for_update=True)
        if found is not None and found.wamid in (None, st.wamid):
            wm, found.wamid = found, st.wamid
    if wm is None or wm.direction != MessageDirection.outbound:
        return "status_unknown"
    try:
        new = WhatsAppStatus(st.status)
    except ValueError:
        return "status_unknown"
    if wm.status == WhatsAppStatus.failed:
        return "status_stale"
    if new != WhatsAppStatus.failed and _ORDER.get(new, 0) <= _ORDER.get(wm.status, 0):
        return "status_stale"
    wm.status = new
    wm.status_at = st.at
    rm = session.get(RequestMessage, wm.request_message_id) if wm.request_message_id else None
    if new == WhatsAppStatus.failed:
        wm.error_code = st.error_code
        _failed(session, wm, rm, st.error_code)
        return "status_failed"
    if rm is not None:
        rm.delivery = DeliveryState.sent
    return "status"


def _failed(
    session: Session, wm: WhatsAppMessage, rm: RequestMessage | None, code: int | None
) -> None:
    """The message did not reach the requester: shown as bounced; a reply that counted as the
    first response stops counting, as a bounced e-mail reply does."""
    wm.status = WhatsAppStatus.failed
    req = session.get(IntakeRequest, wm.request_id)
    if req is None:
        return
    intake.add_history(
        session,
        req,
        actor="system",
        action="whatsapp_failed",
        details={"whatsapp_message_id": wm.id, "error_code": code},
    )
    if rm is None:
        return
    fallback = _fallback_of(session, rm)
    if fallback is not None:  # an automatic message that has another way: once
        queued = outbox.enqueue(
            session, fallback.kind, fallback.params, dedup_key=f"whatsapp:fallback:{wm.id}"
        )
        if queued is not None:
            intake.add_history(
                session,
                req,
                actor="system",
                action="whatsapp_fallback",
                details={"whatsapp_message_id": wm.id, "kind": fallback.kind},
            )
    rm.delivery = DeliveryState.bounced
    if rm.kind == MessageKind.reply and rm.contact_id is not None:
        contact = session.get(RequestContact, rm.contact_id)
        if contact is not None:
            sla.reply_bounced(session, req, contact, at=now())


# Out -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    number: str | None
    free_text: bool
    until: dt.datetime | None  # end of the 24-hour window (open), or when it closed
    last_inbound_at: dt.datetime | None

    @property
    def mode(self) -> Literal["free_text", "templates_only", "unavailable"]:
        if self.number is None:
            return "unavailable"
        return "free_text" if self.free_text else "templates_only"

    @property
    def reason_code(self) -> Literal["window_open", "window_closed", "never_wrote", "no_number"]:
        """Why, as a code a page words in its viewer's language (``reason`` in English)."""
        if self.number is None:
            return "no_number"
        if self.free_text:
            return "window_open"
        return "never_wrote" if self.last_inbound_at is None else "window_closed"

    def reason(self) -> str:
        if self.number is None:
            return "No WhatsApp number is known for this request."
        if self.free_text:
            return (
                "The requester wrote on WhatsApp less than 24 hours ago: free text may be sent "
                "until 24 hours after their last message."
            )
        if self.last_inbound_at is None:
            return (
                "The requester has not written to us on WhatsApp yet: WhatsApp allows only "
                "approved templates until they do."
            )
        return (
            "The requester's last WhatsApp message is more than 24 hours old: WhatsApp allows "
            "only approved templates until they write again."
        )


def window(session: Session, req: IntakeRequest) -> Window:
    number = _number_of(req)
    if number is None:
        return Window(None, False, None, None)
    contact = session.get(WhatsAppContact, phone_lookup(session, number))
    last = contact.last_inbound_at if contact is not None else None
    if last is None:
        return Window(number, False, None, None)
    until = last + WINDOW
    return Window(number, now() < until, until, last)


def reply(
    session: Session,
    req: IntakeRequest,
    user: User,
    *,
    text: str | None = None,
    template: str | None = None,
) -> WhatsAppMessage:
    """Staff or the assigned expert write to the requester on WhatsApp: free text inside the
    window, else a template staff may choose; it counts as the first response."""
    if (text is None) == (template is None):
        raise InvalidWhatsAppReply("text", "give either a text or a template, not both")
    if not configured():
        raise WhatsAppNotConfigured()
    if req.data_key_enc is None:
        raise RequestErased("This request's personal data was erased.")
    w = window(session, req)
    if w.number is None:
        raise NoWhatsAppNumber()
    if text is not None:
        body = text.strip()
        if not body:
            raise InvalidWhatsAppReply("text", "is empty")
        if len(body) > MAX_TEXT:
            raise InvalidWhatsAppReply("text", f"is longer than {MAX_TEXT} characters")
        if not w.free_text:
            raise WindowClosed(w.reason())
        wm, rm = _queue(session, req, w.number, kind=MessageKind.reply, author=user, text=body)
    else:
        assert template is not None
        if template not in templates.STAFF_CHOICES:
            raise InvalidWhatsAppReply(
                "template", f"is not one of {', '.join(templates.STAFF_CHOICES)}"
            )
        wm, rm = _queue_template(
            session, req, w.number, template, [req.reference], MessageKind.reply, user
        )
    contact = sla.record_contact(
        session,
        req,
        channel=ContactChannel.whatsapp,
        contacted_at=wm.at,
        note=None,
        by_user=user,
        via=ContactVia.reply,
        outbox_id=wm.outbox_id,
    )
    rm.contact_id = contact.id
    session.flush()
    return wm


def queue_template(
    session: Session,
    req: IntakeRequest,
    key: str,
    params: list[str],
    *,
    fallback: outbox.Queued | None = None,
) -> WhatsAppMessage | None:
    """An automatic template message (acknowledgement, consultation reminder): never a first
    response. None when the request has no WhatsApp number or WhatsApp is not connected.

    ``fallback``: the outbox row to queue instead if this message fails for good (refused,
    reported failed, WhatsApp disconnected or down for the whole retry window); queued once,
    never when the message went."""
    number = _number_of(req)
    if number is None or not configured() or req.data_key_enc is None:
        return None
    wm, _rm = _queue_template(
        session, req, number, key, params, MessageKind.automatic, None, fallback
    )
    return wm


def fall_back(session: Session, wm_id: int, code: int | None = None) -> bool:
    """A queued automatic message that cannot go: marked failed and its fallback queued.
    False (nothing changed) when it has no fallback or is not waiting to be sent."""
    wm = session.get(WhatsAppMessage, wm_id, with_for_update=True, populate_existing=True)
    if wm is None or wm.status != WhatsAppStatus.queued or wm.request_message_id is None:
        return False
    rm = session.get(RequestMessage, wm.request_message_id)
    if rm is None or _fallback_of(session, rm) is None:
        return False
    wm.error_code = code
    _failed(session, wm, rm, code)
    return True


def _fallback_of(session: Session, rm: RequestMessage) -> outbox.Queued | None:
    req = session.get(IntakeRequest, rm.request_id)
    dk = keys.data_key(req) if req is not None else None
    if dk is None or rm.data_enc is None or rm.kind != MessageKind.automatic:
        return None
    found = keys.unseal_json(dk, MESSAGE_SEAL_KIND, rm.request_id, rm.data_enc).get("fallback")
    return outbox.Queued(found["kind"], dict(found["params"])) if found else None


def _queue_template(
    session: Session,
    req: IntakeRequest,
    number: str,
    key: str,
    params: list[str],
    kind: MessageKind,
    author: User | None,
    fallback: outbox.Queued | None = None,
) -> tuple[WhatsAppMessage, RequestMessage]:
    chosen = templates.choose(key, discreet=req.discreet)
    language = templates.language_for(req.language)
    return _queue(
        session,
        req,
        number,
        kind=kind,
        author=author,
        text=templates.render(chosen, language, params),
        template=chosen,
        language=language,
        params=params,
        fallback=fallback,
    )


def _queue(
    session: Session,
    req: IntakeRequest,
    number: str,
    *,
    kind: MessageKind,
    author: User | None,
    text: str,
    template: templates.Template | None = None,
    language: str | None = None,
    params: list[str] | None = None,
    fallback: outbox.Queued | None = None,
) -> tuple[WhatsAppMessage, RequestMessage]:
    dk = keys.data_key(req)
    if dk is None:
        raise RequestErased("This request's personal data was erased.")
    current = now()
    data = {
        "channel": "whatsapp",
        "to": f"+{number}",
        "subject": None,
        "body": text,
        "template": template.name if template else None,
        "language": language,
        "params": params or [],
        "fallback": {"kind": fallback.kind, "params": fallback.params} if fallback else None,
    }
    rm = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.outbound,
        kind=kind,
        message_id=None,
        at=current,
        recorded_at=current,
        author_id=author.id if author is not None else None,
        delivery=DeliveryState.queued,
        data_enc=keys.seal_json(dk, MESSAGE_SEAL_KIND, req.id, data),
    )
    session.add(rm)
    session.flush()
    wm = WhatsAppMessage(
        request_id=req.id,
        request_message_id=rm.id,
        direction=MessageDirection.outbound,
        phone_lookup=phone_lookup(session, number),
        status=WhatsAppStatus.queued,
        status_at=current,
        template=template.name if template else None,
        language=language,
        at=current,
    )
    session.add(wm)
    session.flush()
    row = outbox.enqueue(
        session, SEND_KIND, {"whatsapp_message_id": wm.id}, dedup_key=f"{SEND_KIND}:{wm.id}"
    )
    assert row is not None  # the key is new by construction
    wm.outbox_id = rm.outbox_id = row.id
    session.flush()
    return wm, rm


def send(session: Session, wm_id: int, client: WhatsAppClient) -> str:
    """The outbox handler's work: send one queued message once. A stored wamid means it went."""
    wm = session.get(WhatsAppMessage, wm_id, with_for_update=True, populate_existing=True)
    if wm is None or wm.wamid is not None or wm.status != WhatsAppStatus.queued:
        return "done_before"
    req = session.get(IntakeRequest, wm.request_id)
    rm = session.get(RequestMessage, wm.request_message_id) if wm.request_message_id else None
    dk = keys.data_key(req) if req is not None else None
    if req is None or rm is None or dk is None or rm.data_enc is None:
        wm.status = WhatsAppStatus.failed
        return "erased"
    data = keys.unseal_json(dk, MESSAGE_SEAL_KIND, req.id, rm.data_enc)
    payload = (
        WhatsAppClient.template(data["template"], data["language"], list(data["params"]))
        if data.get("template")
        else WhatsAppClient.text(data["body"])
    )
    try:
        wamid = client.send(data["to"], payload, callback=f"wm:{wm.id}")
    except WhatsAppRefused as exc:
        wm.error_code = exc.code
        _failed(session, wm, rm, exc.code)
        log.warning("whatsapp_refused", reference=req.reference, code=exc.code)
        return "refused"
    wm.wamid = wamid
    wm.status = WhatsAppStatus.sent
    wm.status_at = now()
    rm.delivery = DeliveryState.sent
    session.flush()
    return "sent"
