"""Outbox handlers of inbound e-mail.

- ``inbound.ack``: the acknowledgement to the sender of an e-mailed request, in reply to their
  message (In-Reply-To/References), with a neutral subject carrying the reference, the link to
  their page, and the attachments that were left out and why. Recorded as an automatic outbound
  message, so a reply threads onto the request.
- ``inbound.triage_alert``: one on-duty staff user is told a request waits in triage (the
  reference and a link only).
- ``inbound.bounce_notice``: the author of a reply that bounced is told it no longer counts as
  the first response (reference only).
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.inbound import service
from app.intake import records as intake
from app.models import IntakeRequest, OutboxMessage, RequestMessage, RequestStatus, User
from app.notifications import mail
from app.notifications.requester import send_to_requester
from app.outbox.registry import PermanentFailure, handler

REASONS = {
    "type": "this kind of file is not accepted (PDF, images and office documents are)",
    "too_large": "the file is larger than we accept",
    "message_too_large": "the message as a whole was larger than we accept",
}


def _request(session: Session, row: OutboxMessage) -> IntakeRequest:
    req = session.get(IntakeRequest, uuid.UUID(str(row.params["request_id"])))
    if req is None:
        raise PermanentFailure("request is gone")
    return req


def ack_text(reference: str, link: str, sla_minutes: int, refused: list[dict[str, str]]) -> str:
    lines = [
        "Hello,",
        "",
        f"Your message reached us. Its reference is {reference}.",
        f"A person will answer you within {sla_minutes} minutes of its arrival.",
        "",
        f"Keep [{reference}] in the subject when you write to us again about it.",
        f"You can follow your request here: {link}",
    ]
    if refused:
        lines += ["", "These attachments were not kept:"]
        lines += [f"- {a['filename']}: {REASONS.get(a['refused'], a['refused'])}" for a in refused]
        lines += ["Please send them again as PDF, images or office documents, each small enough."]
    lines += ["", "This message was sent automatically; replies reach a person."]
    return "\n".join(lines)


@handler(service.ACK_KIND)
def send_ack(session: Session, row: OutboxMessage) -> None:
    req = _request(session, row)
    if req.status == RequestStatus.spam:
        raise PermanentFailure("request was marked as spam; nothing is sent")
    pii = intake.reveal_pii(req)
    token = intake.reveal_token(req)
    original = session.get(RequestMessage, int(row.params["message_row_id"]))
    if pii is None or token is None or original is None:
        raise PermanentFailure("request data erased")
    data = service.reveal_message(req, original) or {}
    refused = [a for a in data.get("attachments", []) if a.get("refused")]
    settings = get_settings()
    link = f"{settings.public_url}/r/{req.reference}#token={token}"
    headers = {}
    if original.message_id and not original.message_id.endswith("@inbound.invalid"):
        headers = {
            "In-Reply-To": f"<{original.message_id}>",
            "References": f"<{original.message_id}>",
        }
    message = mail.build_message(
        to=str(pii["email"]),
        subject=f"We received your message [{req.reference}]",
        text=ack_text(req.reference, link, req.sla_minutes, refused),
        sender=settings.mail_from_discreet,
        message_id=mail.stable_message_id(f"outbox-{row.id}"),
        headers=headers,
    )
    send_to_requester(session, req, message, outbox_id=row.id, what="acknowledgement")


@handler(service.TRIAGE_ALERT_KIND)
def send_triage_alert(session: Session, row: OutboxMessage) -> None:
    req = _request(session, row)
    user = session.get(User, uuid.UUID(str(row.params["user_id"])))
    if user is None or not user.is_active:
        return  # no longer on duty
    if req.country_of_origin is not None:
        return  # completed meanwhile
    base = get_settings().public_url
    text = "\n".join(
        [
            f"Request {req.reference} arrived by e-mail and waits in triage.",
            "Its countries and language are not known yet, so it is not routed to an expert.",
            f"The one-hour promise runs from {req.received_at:%Y-%m-%d %H:%M} UTC.",
            "",
            f"Open the case: {base}/api/v1/cases/{req.reference}",
            f"Complete it: PATCH {base}/api/v1/cases/{req.reference}/triage",
        ]
    )
    mail.send(
        mail.build_message(
            to=user.email,
            subject=f"Request {req.reference} arrived by e-mail and needs triage",
            text=text,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )


@handler(service.BOUNCE_NOTICE_KIND)
def send_bounce_notice(session: Session, row: OutboxMessage) -> None:
    req = _request(session, row)
    user = session.get(User, uuid.UUID(str(row.params["user_id"])))
    if user is None or not user.is_active:
        return
    base = get_settings().public_url
    still = (
        "The request has no first response now: the clock goes on."
        if req.first_responded_at is None
        else "An earlier contact still counts as the first response."
    )
    text = "\n".join(
        [
            f"Your reply on request {req.reference} could not be delivered (it bounced).",
            "It no longer counts as the first response.",
            still,
            "",
            f"Please reach the requester another way: {base}/api/v1/cases/{req.reference}",
        ]
    )
    mail.send(
        mail.build_message(
            to=user.email,
            subject=f"Your reply on request {req.reference} bounced",
            text=text,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )
