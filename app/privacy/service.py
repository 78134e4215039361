"""Data rights: export everything held about a request, erase it, and the retention sweep.

Erasure is crypto-shredding plus clearing: the request's wrapped data key is destroyed (nothing
encrypted under it can be read again, even with the master key) and every ciphertext and free
text that belongs to the request is cleared as well, so a copy of the database holds nothing of
the person: ``requests.pii_enc``/``token_enc``/``email_lookup``, ``request_history.data_enc``,
``request_contacts.note_enc``, ``request_messages.data_enc`` (and inbound Message-IDs),
``request_notes.body_enc``, ``idempotency_records`` (deleted), documents attached to the request
(rows and files), consultations' meeting links and passwords, the outbox rows' ``last_error``
(an SMTP refusal can quote an address; pending rows are cancelled), mail set aside on its
threads or from its address (``inbound_set_aside``, deleted), its WhatsApp number's rows
(``whatsapp_contacts``, deleted; ``whatsapp_messages.phone_lookup`` emptied and Meta's ids, which
carry the number, cleared), and the ``.eml`` copies under ``var/mail/``. What stays: dates,
status, country, region, SLA figures, counts, and the link token's hash, so the requester's link
answers "erased" instead of a 500.

On SQLite, ``PRAGMA secure_delete`` is on for the erasing transaction (freed bytes are zeroed)
and the WAL is checkpointed after commit, so the old bytes do not linger in the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import functools
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from sqlalchemy import String, and_, cast, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from app.accounts import throttle as sign_in_throttle
from app.audit import service as audit
from app.core import database
from app.core.settings import get_settings
from app.core.time import now
from app.inbound import set_aside
from app.intake import keys, records
from app.intake import throttle as submission_limit
from app.models import (
    Consultation,
    Document,
    DocumentKind,
    DocumentStorage,
    IdempotencyRecord,
    IntakeRequest,
    MessageDirection,
    OutboxMessage,
    OutboxStatus,
    RequestContact,
    RequestHistory,
    RequestMessage,
    RequestNote,
    RequestStatus,
    WhatsAppContact,
    WhatsAppMessage,
)
from app.models.messages import MESSAGE_SEAL_KIND, NOTE_SEAL_KIND
from app.privacy import mailcopies
from app.privacy.errors import CaseNotFound

log = structlog.get_logger(__name__)

EXPORT_FORMAT = "asylum-intake request export, version 1"
ENDED = (RequestStatus.spam, RequestStatus.declined, RequestStatus.withdrawn)
OPEN = (
    RequestStatus.new,
    RequestStatus.in_progress,
    RequestStatus.consultation_scheduled,
    RequestStatus.consultation_held,
    RequestStatus.report_ordered,
)
# Seal kinds (AES-GCM associated data) used by the domains that write these columns.
HISTORY_KINDS = ("history",)
CONTACT_NOTE_KINDS = ("contact_note",)
MESSAGE_KINDS = (MESSAGE_SEAL_KIND,)
NOTE_KINDS = (NOTE_SEAL_KIND,)
# Attachments of inbound e-mail: documents whose bytes are sealed with the request's key
# (app/inbound/service.py ATTACHMENT_SEAL_KIND), named in the message's "attachments" list.
ATTACHMENT_SEAL_KIND = "attachment"
RETENTION_BATCH = 200
# History rows about the organisation's own work, left out of the requester's export (rows
# whose action starts with "escalation_" too).
INTERNAL_HISTORY = frozenset({"note_added", "duty_lead_alerted"})


class ErasureReason(enum.StrEnum):
    requester_asked = "requester_asked"
    retention = "retention"
    admin_decision = "admin_decision"
    legal_obligation = "legal_obligation"


def get_request(session: Session, reference: str) -> IntakeRequest:
    req = records.get_by_reference(session, reference)
    if req is None:
        raise CaseNotFound()
    return req


def is_erased(req: IntakeRequest) -> bool:
    return req.erased_at is not None or (req.data_key_enc is None and req.pii_enc is None)


# Export ---------------------------------------------------------------------------------------


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _open(dk: bytes | None, kinds: tuple[str, ...], req: IntakeRequest, blob: bytes | None) -> Any:
    """The decrypted value (JSON when it parses, else text), None when absent or erased."""
    if blob is None or dk is None:
        return None
    for kind in kinds:
        try:
            raw = keys.unseal(dk, kind, req.id, blob)
        except InvalidTag:  # another kind (associated data) or damaged: try the next
            continue
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")
    return {"unreadable": True}


def _attachment_ids(messages: Sequence[Any]) -> list[uuid.UUID]:
    """Document ids named in decrypted messages' ``attachments`` lists."""
    ids: list[uuid.UUID] = []
    for data in messages:
        if not isinstance(data, dict):
            continue
        for att in data.get("attachments") or []:
            if isinstance(att, dict) and att.get("document_id"):
                try:
                    ids.append(uuid.UUID(str(att["document_id"])))
                except ValueError:
                    continue
    return ids


def _request_documents(
    session: Session, req: IntakeRequest, messages: Sequence[Any] = ()
) -> list[Document]:
    """Documents that belong to the request: attachments named in its messages (and any
    document with a ``request_id`` column pointing at it, should one be added)."""
    ids = _attachment_ids(messages)
    docs = list(session.scalars(select(Document).where(Document.id.in_(ids))).all()) if ids else []
    column = getattr(Document, "request_id", None)
    if column is not None:
        docs += [
            d
            for d in session.scalars(select(Document).where(column == req.id)).all()
            if d.id not in ids
        ]
    return docs


def _document_bytes(doc: Document, dk: bytes | None, req: IntakeRequest) -> bytes | None:
    raw: bytes | None
    if doc.storage == DocumentStorage.db:
        raw = doc.data
    elif doc.path is None:
        raw = None
    else:
        try:
            raw = (get_settings().resolved_document_dir / doc.path).read_bytes()
        except OSError:
            raw = None
    if raw is None or doc.kind != DocumentKind.attachment:
        return raw
    if dk is None:
        return None
    try:
        return keys.unseal(dk, ATTACHMENT_SEAL_KIND, req.id, raw)
    except InvalidTag:
        return None


def _outbox_rows(session: Session, req: IntakeRequest) -> list[OutboxMessage]:
    rid = str(req.id)
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                or_(
                    OutboxMessage.params["request_id"].as_string() == rid,
                    cast(OutboxMessage.params, String).contains(rid),
                )
            )
            .order_by(OutboxMessage.id)
        ).all()
    )


def _requester_actor(actor: str) -> str:
    """Who acted, as the requester sees it: themselves, the service, or the organisation
    (never a staff member's or expert's id)."""
    return actor if actor in ("requester", "system") else "organisation"


def _for_requester(row: RequestHistory) -> bool:
    """History rows about the organisation's own work (internal notes, escalations between
    staff) stay out of the requester's export."""
    return row.action not in INTERNAL_HISTORY and not row.action.startswith("escalation_")


def export_request(
    session: Session,
    req: IntakeRequest,
    *,
    for_admin: bool = False,
    actor: str = "requester",
    actor_role: str | None = "requester",
) -> dict[str, Any]:
    """Everything held about the request, decrypted, as one JSON-able dict (attachments in
    base64). Recorded in the audit trail in the caller's transaction.

    The requester's own export (the default) leaves out what is for the organisation only:
    internal notes, the notes on logged contacts, who on the staff acted or logged what (ids),
    history details and rows about staff work. ``for_admin``: everything, for an admin
    answering a formal access request."""
    dk = keys.data_key(req)
    rid = req.id
    history = session.scalars(
        select(RequestHistory)
        .where(RequestHistory.request_id == rid)
        .order_by(RequestHistory.at, RequestHistory.id)
    ).all()
    contacts = session.scalars(
        select(RequestContact).where(RequestContact.request_id == rid).order_by(RequestContact.id)
    ).all()
    messages = session.scalars(
        select(RequestMessage).where(RequestMessage.request_id == rid).order_by(RequestMessage.id)
    ).all()
    notes = (
        session.scalars(
            select(RequestNote).where(RequestNote.request_id == rid).order_by(RequestNote.id)
        ).all()
        if for_admin
        else []
    )
    consultations = session.scalars(
        select(Consultation).where(Consultation.request_id == rid).order_by(Consultation.id)
    ).all()
    opened = [_open(dk, MESSAGE_KINDS, req, m.data_enc) for m in messages]
    documents = _request_documents(session, req, opened)
    out: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "audience": "admin" if for_admin else "requester",
        "exported_at": _iso(now()),
        "erased": is_erased(req),
        "request": {
            "reference": req.reference,
            "status": req.status.value,
            "source": req.source.value,
            "requester_type": req.requester_type.value,
            "preferred_channel": req.preferred_channel.value,
            "country_of_origin": req.country_of_origin,
            "country_of_residence": req.country_of_residence,
            "region_code": req.region_code,
            "case_stage": req.case_stage.value,
            "deadline": _iso(req.deadline),
            "topics": list(req.topics),
            "wants": list(req.wants),
            "consent_updates": list(req.consent_updates),
            "language": req.language,
            "timezone": req.timezone,
            "discreet": req.discreet,
            "privacy_notice_version": req.privacy_notice_version,
            "consent_given_at": _iso(req.consent_given_at),
            "received_at": _iso(req.received_at),
            "sla_minutes": req.sla_minutes,
            "first_response_due_at": _iso(req.first_response_due_at),
            "first_responded_at": _iso(req.first_responded_at),
            "withdrawn_at": _iso(req.withdrawn_at),
            "erased_at": _iso(req.erased_at),
        },
        "personal": _open(dk, ("pii",), req, req.pii_enc),
        "history": [
            {
                "at": _iso(h.at),
                "actor": h.actor,
                "action": h.action,
                "from_status": h.from_status,
                "to_status": h.to_status,
                "details": h.details,
                "data": _open(dk, HISTORY_KINDS, req, h.data_enc),
            }
            if for_admin
            else {
                "at": _iso(h.at),
                "actor": _requester_actor(h.actor),
                "action": h.action,
                "from_status": h.from_status,
                "to_status": h.to_status,
                # Their own details as corrected by staff (before and after).
                "data": _open(dk, HISTORY_KINDS, req, h.data_enc),
            }
            for h in history
            if for_admin or _for_requester(h)
        ],
        "contacts": [
            {
                "channel": c.channel.value,
                "via": c.via.value,
                "contacted_at": _iso(c.contacted_at),
                "recorded_at": _iso(c.recorded_at),
                "recorded_by": str(c.recorded_by) if c.recorded_by else None,
                "note": _open(dk, CONTACT_NOTE_KINDS, req, c.note_enc),
                "bounced_at": _iso(c.bounced_at),
            }
            if for_admin
            else {
                "channel": c.channel.value,
                "via": c.via.value,
                "contacted_at": _iso(c.contacted_at),
                "bounced_at": _iso(c.bounced_at),
            }
            for c in contacts
        ],
        "messages": [
            {
                "direction": m.direction.value,
                "kind": m.kind.value,
                "message_id": m.message_id,
                "at": _iso(m.at),
                "delivery": m.delivery.value if m.delivery else None,
                "data": data,
            }
            for m, data in zip(messages, opened, strict=True)
        ],
        "consultations": [
            {
                "start_at": _iso(c.start_at),
                "end_at": _iso(c.end_at),
                "status": c.status.value,
                "meeting_join_url": c.meeting_join_url,
                "cancelled_at": _iso(c.cancelled_at),
            }
            for c in consultations
        ],
        "documents": [
            {
                "id": str(d.id),
                "filename": d.filename,
                "content_type": d.content_type,
                "size": d.size,
                "sha256": d.sha256,
                "content_base64": (
                    base64.b64encode(content).decode()
                    if (content := _document_bytes(d, dk, req)) is not None
                    else None
                ),
            }
            for d in documents
        ],
    }
    if for_admin:
        # Internal notes: for the organisation only (and an admin's formal access answer).
        out["notes"] = [
            {
                "created_at": _iso(n.created_at),
                "author_id": str(n.author_id) if n.author_id else None,
                "body": _open(dk, NOTE_KINDS, req, n.body_enc),
            }
            for n in notes
        ]
    audit.record(
        session,
        action="privacy.export",
        actor=actor,
        actor_role=actor_role,
        target=req.reference,
        details={
            "documents": len(documents),
            "erased": out["erased"],
            "audience": out["audience"],
        },
    )
    log.info("request_exported", reference=req.reference)
    return out


# Erasure --------------------------------------------------------------------------------------


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _delete_document_files(session: Session, documents: list[Document]) -> int:
    removed = 0
    folder = get_settings().resolved_document_dir
    for doc in documents:
        path = doc.path
        session.delete(doc)
        if path is None:
            continue
        session.flush()
        # Files are named by content: keep one another document still uses.
        if session.scalar(select(func.count()).select_from(Document).where(Document.path == path)):
            continue
        database.after_commit(session, functools.partial(_unlink, folder / path))
        removed += 1
    return removed


def _unlink(target: Path) -> None:
    target.unlink(missing_ok=True)


def _checkpoint(session: Session) -> None:
    """After commit on SQLite: copy the WAL into the database file and truncate it, so the
    old page images (with the destroyed key) do not stay in the -wal file. Best effort: it
    waits at most two seconds for other connections."""
    engine = session.get_bind().engine

    def run() -> None:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA busy_timeout=2000")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()

    database.after_commit(session, run)


def erase_request(
    session: Session,
    req: IntakeRequest,
    *,
    by: str,
    reason: str,
    actor_role: str | None = None,
    mail_needles: list[str] | None = None,
) -> dict[str, int]:
    """Destroy the request's personal data (see the module docstring); idempotent. ``by`` is the
    audit actor (a user's id, "requester" or "system"); ``reason`` an ``ErasureReason``.
    Returns counts of what was cleared (non-personal, recorded in the audit trail).
    ``mail_needles``: collect what identifies the request's mail copies there instead of
    removing them after commit (a batch removes them once, see ``run_retention``)."""
    reason = ErasureReason(reason).value
    counts: dict[str, int] = {}
    if _sqlite(session):
        session.execute(text("PRAGMA secure_delete=ON"))
    already = is_erased(req)
    token = None if already else records.reveal_token(req)
    # Attachments are found through the messages, so read them before the key goes.
    dk = keys.data_key(req)
    messages = session.scalars(
        select(RequestMessage.data_enc).where(
            RequestMessage.request_id == req.id, RequestMessage.data_enc.is_not(None)
        )
    ).all()
    documents = _request_documents(
        session, req, [_open(dk, MESSAGE_KINDS, req, m) for m in messages]
    )
    # Message-IDs of e-mail sent about the request: the names of its copies under var/mail.
    message_ids = [
        mid.strip("<>")
        for mid in session.scalars(
            select(RequestMessage.message_id).where(
                RequestMessage.request_id == req.id, RequestMessage.message_id.is_not(None)
            )
        ).all()
        if mid
    ]
    current = now()
    rid = req.id
    # Mail set aside on the request's threads or from its address (before the look-up goes).
    counts["set_aside_mail"] = set_aside.erase_for(session, rid, req.email_lookup)

    def count(name: str, result: Any) -> None:
        counts[name] = int(getattr(result, "rowcount", 0) or 0)

    req.data_key_enc = None
    req.data_key_id = None
    req.pii_enc = None
    req.token_enc = None
    req.email_lookup = None
    if req.erased_at is None:
        req.erased_at = current
    session.flush()
    count(
        "history",
        session.execute(
            update(RequestHistory)
            .where(RequestHistory.request_id == rid, RequestHistory.data_enc.is_not(None))
            .values(data_enc=None)
        ),
    )
    count(
        "contact_notes",
        session.execute(
            update(RequestContact)
            .where(RequestContact.request_id == rid, RequestContact.note_enc.is_not(None))
            .values(note_enc=None)
        ),
    )
    count(
        "messages",
        session.execute(
            update(RequestMessage)
            .where(RequestMessage.request_id == rid, RequestMessage.data_enc.is_not(None))
            .values(data_enc=None)
        ),
    )
    # An inbound Message-ID or In-Reply-To can name the sender's host or address.
    session.execute(
        update(RequestMessage)
        .where(
            RequestMessage.request_id == rid,
            RequestMessage.direction == MessageDirection.inbound,
        )
        .values(message_id=None, in_reply_to=None, sender_lookup=None)
    )
    count(
        "notes",
        session.execute(
            update(RequestNote)
            .where(RequestNote.request_id == rid, RequestNote.body_enc.is_not(None))
            .values(body_enc=None)
        ),
    )
    # WhatsApp: the number's keyed hash (and its 24-hour window) and Meta's message ids, which
    # carry the number; the texts and media are the request's messages and documents above.
    count(
        "whatsapp_contacts",
        session.execute(delete(WhatsAppContact).where(WhatsAppContact.request_id == rid)),
    )
    count(
        "whatsapp_messages",
        session.execute(
            update(WhatsAppMessage)
            .where(WhatsAppMessage.request_id == rid, WhatsAppMessage.phone_lookup != "")
            .values(phone_lookup="", wamid=None)
        ),
    )
    count(
        "idempotency_records",
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.request_id == rid)),
    )
    session.execute(
        update(Consultation)
        .where(Consultation.request_id == rid)
        .values(meeting_join_url=None, meeting_password_enc=None, meeting_password_key_id=None)
    )
    outbox_rows = _outbox_rows(session, req)
    for row in outbox_rows:
        row.last_error = None
        if row.status in (OutboxStatus.pending, OutboxStatus.claimed):
            row.status = OutboxStatus.cancelled
    counts["outbox_rows"] = len(outbox_rows)
    counts["documents"] = len(documents)
    counts["document_files"] = _delete_document_files(session, documents)
    if not already:
        records.add_history(
            session, req, actor=by, action="erased", details={"reason": reason}, at=current
        )
    session.flush()
    audit.record(
        session,
        action="privacy.erase",
        actor=by,
        actor_role=actor_role,
        target=req.reference,
        details={"reason": reason, "already_erased": already, **counts},
    )
    needles = [req.reference, *message_ids] + ([token] if token else [])
    if mail_needles is not None:
        mail_needles.extend(needles)
    else:
        _after_commit_cleanup(session, needles)
    log.info("request_erased", reference=req.reference, reason=reason)
    return counts


def _after_commit_cleanup(session: Session, needles: list[str]) -> None:
    """Once the erasure is durable: remove the mail copies, checkpoint SQLite's WAL."""
    settings = get_settings()
    if settings.mail_backend == "file" and needles:
        folder = settings.mail_dir
        database.after_commit(session, lambda: _purge_mail(folder, needles))
    if _sqlite(session):
        _checkpoint(session)


def _purge_mail(folder: Path, needles: list[str]) -> None:
    mailcopies.purge(folder, needles)


# Retention ------------------------------------------------------------------------------------


def _ended_at() -> Any:
    """When the request reached its current status (the latest history row moving to it)."""
    return (
        select(func.max(RequestHistory.at))
        .where(
            RequestHistory.request_id == IntakeRequest.id,
            RequestHistory.to_status == IntakeRequest.status,
        )
        .correlate(IntakeRequest)
        .scalar_subquery()
    )


def due_for_retention(session: Session, current: dt.datetime, *, limit: int) -> list[IntakeRequest]:
    settings = get_settings()
    ended_before = current - dt.timedelta(days=settings.retention_ended_days)
    closed_before = current - dt.timedelta(days=settings.retention_closed_days)
    ended_at = func.coalesce(_ended_at(), IntakeRequest.updated_at)
    stmt = (
        select(IntakeRequest)
        .where(
            IntakeRequest.erased_at.is_(None),
            or_(
                and_(IntakeRequest.status.in_(ENDED), ended_at < ended_before),
                and_(IntakeRequest.status == RequestStatus.closed, ended_at < closed_before),
            ),
        )
        .order_by(IntakeRequest.received_at, IntakeRequest.id)
        .limit(limit)
    )
    return list(session.scalars(stmt).all())


def run_retention(session: Session, current: dt.datetime | None = None) -> dict[str, int]:
    """Erase every request past its retention period (never an open one), delete mail set aside
    past ``INTAKE_INBOUND_SET_ASIDE_DAYS``; one audit row with the counts. Returns
    ``{"erased", "ended", "closed"}``."""
    current = current or now()
    counts = {"erased": 0, "ended": 0, "closed": 0}
    needles: list[str] = []
    while True:
        batch = due_for_retention(session, current, limit=RETENTION_BATCH)
        if not batch:
            break
        for req in batch:
            if req.status in OPEN:  # never: the query excludes them; belt and braces
                continue
            erase_request(
                session, req, by="system", reason=ErasureReason.retention, mail_needles=needles
            )
            counts["erased"] += 1
            counts["closed" if req.status == RequestStatus.closed else "ended"] += 1
    if counts["erased"]:
        _after_commit_cleanup(session, needles)
    # Throttle counts outlive their use otherwise (keyed hashes, but still a trace of who tried).
    purged = submission_limit.purge_ended_windows(session, current)
    purged += sign_in_throttle.purge_forgotten(session, current)
    set_aside_purged = set_aside.purge(session, current)
    settings = get_settings()
    audit.record(
        session,
        action="retention.run",
        actor="system",
        actor_role="system",
        details={
            **counts,
            "ended_days": settings.retention_ended_days,
            "closed_days": settings.retention_closed_days,
            "set_aside_purged": set_aside_purged,
            "set_aside_days": settings.inbound_set_aside_days,
        },
    )
    log.info(
        "retention_run", **counts, throttle_counts_purged=purged, set_aside_purged=set_aside_purged
    )
    return counts
