"""The ``link`` provider: no API, just a link.

Either the expert's own meeting link (``MeetingSpec.personal_meeting_url``) or, for a
self-hosted meeting server, ``INTAKE_MEETING_LINK_TEMPLATE`` with ``{room}`` replaced by a random,
unguessable room name (``secrets.token_urlsafe``: 192 bits). The link is the meeting, so it is
also the ``external_id``; update and delete change nothing, and the host uses the same link.
"""

from __future__ import annotations

import secrets

from app.meetings.errors import MeetingConfigError
from app.meetings.providers import ExternalId, MeetingInfo, MeetingSpec, ProviderName

ROOM_BYTES = 24


def new_room_name() -> str:
    return secrets.token_urlsafe(ROOM_BYTES)


def meeting_link(personal_meeting_url: str | None, template: str) -> str:
    """The expert's own link, else a new room of the template; neither: ``MeetingConfigError``."""
    personal = (personal_meeting_url or "").strip()
    if personal:
        if not personal.startswith(("https://", "http://")):
            raise MeetingConfigError("the expert's meeting link is not an http(s) URL")
        return personal
    if template:
        return template.replace("{room}", new_room_name())
    raise MeetingConfigError(
        "no meeting link: the expert has no personal link and "
        "INTAKE_MEETING_LINK_TEMPLATE is not set"
    )


def can_make_link(personal_meeting_url: str | None, template: str) -> bool:
    """Whether ``create`` would make a link: the same rule, asked without raising."""
    try:
        meeting_link(personal_meeting_url, template)
    except MeetingConfigError:
        return False
    return True


class LinkMeetingProvider:
    name: ProviderName = "link"

    def __init__(self, template: str = "") -> None:
        if template and (
            "{room}" not in template or not template.startswith(("https://", "http://"))
        ):
            raise MeetingConfigError("the meeting link template must be an http(s) URL with {room}")
        self.template = template

    def create(self, spec: MeetingSpec) -> MeetingInfo:
        url = meeting_link(spec.personal_meeting_url, self.template)
        return MeetingInfo(provider="link", external_id=url, join_url=url, password=None)

    def find(self, spec: MeetingSpec) -> MeetingInfo | None:
        """A link leaves nothing behind to find: making it again is harmless."""
        return None

    def update(self, external_id: ExternalId, spec: MeetingSpec) -> None:
        """The link stays the same when the time changes."""

    def delete(self, external_id: ExternalId) -> None:
        """Nothing to delete: a link has no server-side meeting."""

    def host_link(self, external_id: ExternalId) -> str:
        return str(external_id)
