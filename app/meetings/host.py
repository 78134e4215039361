"""The expert's fresh host link of a consultation's meeting (read from the provider now: Zoom's
start link expires after about two hours, so it is never stored). Used by
``GET /api/v1/expert/consultations/{id}/host-link`` and the expert's consultations page."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound, ServiceUnavailable
from app.meetings.errors import MeetingError, ZoomMeetingNotFound
from app.meetings.factory import get_meeting_provider
from app.models import Consultation, User


class MeetingPending(Conflict):
    code = "meeting_pending"


class MeetingGone(Conflict):
    code = "meeting_gone"


class MeetingUnavailable(ServiceUnavailable):
    code = "meeting_provider_unavailable"


def fresh_host_link(session: Session, consultation_id: uuid.UUID, expert: User) -> tuple[str, str]:
    """``(provider, url)`` for the consultation's own expert; anyone else: 404."""
    c = session.get(Consultation, consultation_id)
    if c is None or c.expert_id != expert.id:
        raise NotFound("No such consultation.")
    if c.meeting_external_id is None or c.meeting_provider is None:
        raise MeetingPending("The meeting has not been created yet: the link follows.")
    if c.meeting_provider == "link":
        return "link", c.meeting_join_url or c.meeting_external_id
    provider = get_meeting_provider()
    if provider.name != c.meeting_provider:
        raise MeetingUnavailable(
            f"This meeting was made with {c.meeting_provider}, which is no longer configured."
        )
    external_id = c.zoom_meeting_id if c.zoom_meeting_id is not None else c.meeting_external_id
    try:
        url = provider.host_link(external_id)
    except ZoomMeetingNotFound:
        raise MeetingGone("The meeting no longer exists in Zoom.") from None
    except MeetingError:
        raise MeetingUnavailable(
            "The meeting service did not answer; try again in a minute.",
            headers={"Retry-After": "60"},
        ) from None
    return c.meeting_provider, url
