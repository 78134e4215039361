"""The online meeting of a consultation: made at once by the ``link`` provider, else by
an outbox row; moved and deleted through outbox rows."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.orm import Session

from app.core.crypto import encrypt_with_master
from app.core.settings import get_settings
from app.meetings.errors import MeetingError
from app.meetings.factory import get_meeting_provider
from app.meetings.providers import MeetingInfo, MeetingSpec
from app.models import (
    Consultation,
    ExpertProfile,
    IntakeRequest,
)
from app.outbox import service as outbox
from app.scheduling.service.common import MEETING_CREATE, MEETING_DELETE

log = structlog.get_logger(__name__)


def meeting_spec(
    c: Consultation, profile: ExpertProfile, req: IntakeRequest, zone: str, *, marker: str = ""
) -> MeetingSpec:
    """No personal data: the reference is the topic and the agenda. ``marker`` (ids only)
    names one create and goes into the agenda, so that a retried create finds the meeting an
    earlier attempt made instead of making a second one."""
    agenda = f"Reference {req.reference}"
    if marker:
        agenda += f"\n[booking {marker}]"
    return MeetingSpec(
        topic=f"Consultation {req.reference}",
        start=c.start_at,
        duration_minutes=int((c.end_at - c.start_at).total_seconds() // 60),
        timezone=zone,
        agenda=agenda,
        host=profile.zoom_user or profile.email,
        personal_meeting_url=profile.personal_meeting_link,
        marker=f"[booking {marker}]" if marker else "",
    )


def create_marker(consultation_id: uuid.UUID, outbox_id: int) -> str:
    """One per ``meetings.create`` row: its retries share it; a later create (the booking
    moved to another expert and back) has its own, so it never adopts a meeting on its way to
    being deleted."""
    return f"{consultation_id}/{outbox_id}"


def store_meeting(c: Consultation, info: MeetingInfo) -> None:
    c.meeting_provider = info.provider
    c.meeting_external_id = str(info.external_id)
    # Zoom's id (above 2**32) also as a 64-bit integer: webhooks find the consultation by it.
    c.zoom_meeting_id = info.external_id if isinstance(info.external_id, int) else None
    c.meeting_join_url = info.join_url
    if info.password:
        key_id, blob = encrypt_with_master(info.password.encode(), str(c.id).encode())
        c.meeting_password_enc, c.meeting_password_key_id = blob, key_id
    else:
        c.meeting_password_enc = c.meeting_password_key_id = None


def _clear_meeting(c: Consultation) -> None:
    c.meeting_provider = c.meeting_external_id = c.meeting_join_url = None
    c.meeting_password_enc = c.meeting_password_key_id = None
    c.zoom_meeting_id = None
    c.meeting_started_at = c.meeting_ended_at = c.meeting_deleted_at = None


def _attach_meeting(
    session: Session, c: Consultation, profile: ExpertProfile, req: IntakeRequest, zone: str
) -> None:
    """The ``link`` provider makes no call: the join link (the expert's personal link, or one
    from the template) is known at once. Other providers, or a link that cannot be made now:
    the link follows, through a ``meetings.create`` outbox row."""
    if get_settings().resolved_meeting_provider == "link":
        try:
            store_meeting(c, get_meeting_provider().create(meeting_spec(c, profile, req, zone)))
            return
        except MeetingError:
            log.warning("meeting_link_missing", consultation_id=str(c.id))
    outbox.enqueue(session, MEETING_CREATE, {"consultation_id": str(c.id)})


def discard_meeting(session: Session, consultation_id: uuid.UUID, info: MeetingInfo) -> None:
    """A meeting made for a consultation that no longer wants it (cancelled, moved to another
    expert, or given a meeting meanwhile while the call was in flight): delete it through the
    outbox, so that it does not stay in the host's calendar or count against their cap."""
    if info.provider == "link":
        return
    outbox.enqueue(
        session,
        MEETING_DELETE,
        {
            "consultation_id": str(consultation_id),
            "provider": info.provider,
            "external_id": str(info.external_id),
        },
    )


def _drop_meeting(session: Session, c: Consultation) -> None:
    if c.meeting_external_id is not None and c.meeting_provider not in (None, "link"):
        outbox.enqueue(
            session,
            MEETING_DELETE,
            {
                "consultation_id": str(c.id),
                "provider": c.meeting_provider,
                "external_id": c.meeting_external_id,
            },
        )
