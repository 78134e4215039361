"""The ``fake`` provider: meetings in memory, for development and tests of the booking flow."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from app.meetings.errors import ZoomMeetingNotFound
from app.meetings.providers import ExternalId, MeetingInfo, MeetingSpec, ProviderName


@dataclass
class FakeMeeting:
    spec: MeetingSpec
    info: MeetingInfo
    updates: list[MeetingSpec] = field(default_factory=list)


class FakeMeetingProvider:
    """Behaves like Zoom from the caller's side (ids above 2**32, delete of a missing meeting
    is done, host_link of a missing meeting fails) without any network."""

    name: ProviderName = "fake"

    def __init__(self) -> None:
        self.meetings: dict[int, FakeMeeting] = {}
        self.deleted: set[int] = set()
        self._next_id = 2**33 + 1000
        self._lock = threading.Lock()

    def create(self, spec: MeetingSpec) -> MeetingInfo:
        with self._lock:
            meeting_id = self._next_id
            self._next_id += 1
            info = MeetingInfo(
                provider="fake",
                external_id=meeting_id,
                join_url=f"https://meetings.invalid/j/{meeting_id}",
                password=secrets.token_hex(4),
            )
            self.meetings[meeting_id] = FakeMeeting(spec=spec, info=info)
            return info

    def find(self, spec: MeetingSpec) -> MeetingInfo | None:
        with self._lock:
            for meeting in self.meetings.values():
                if spec.marker and meeting.spec.marker == spec.marker:
                    return meeting.info
            return None

    def _get(self, external_id: ExternalId) -> FakeMeeting:
        meeting = self.meetings.get(int(external_id))
        if meeting is None:
            raise ZoomMeetingNotFound("fake: the meeting does not exist", status=404, code=3001)
        return meeting

    def update(self, external_id: ExternalId, spec: MeetingSpec) -> None:
        with self._lock:
            meeting = self._get(external_id)
            meeting.updates.append(spec)
            meeting.spec = spec

    def delete(self, external_id: ExternalId) -> None:
        with self._lock:
            if self.meetings.pop(int(external_id), None) is not None:
                self.deleted.add(int(external_id))

    def host_link(self, external_id: ExternalId) -> str:
        with self._lock:
            self._get(external_id)
            return f"https://meetings.invalid/s/{int(external_id)}?zak={secrets.token_urlsafe(8)}"
