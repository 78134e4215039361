"""The interface every meeting provider implements, and the values it takes and returns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

ProviderName = Literal["zoom", "link", "fake"]
ExternalId = int | str


@dataclass(frozen=True)
class MeetingSpec:
    """What a meeting should look like. ``start`` must be timezone-aware; it is kept in UTC.

    ``host`` is the provider's user: for Zoom the host's Zoom user email or id. ``timezone`` is
    the IANA zone shown to participants (the start itself is always sent in UTC).
    ``personal_meeting_url`` is only used by the ``link`` provider: the expert's own link.
    ``marker`` names one create (stable across its retries); it is written into the agenda so
    that ``find`` can recognise a meeting whose create answer was lost.
    """

    topic: str
    start: dt.datetime
    duration_minutes: int
    timezone: str = "UTC"
    agenda: str = ""
    host: str = ""
    personal_meeting_url: str | None = field(default=None, repr=False)
    marker: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("MeetingSpec.start must be timezone-aware")
        object.__setattr__(self, "start", self.start.astimezone(dt.UTC))
        if isinstance(self.duration_minutes, bool) or not isinstance(self.duration_minutes, int):
            raise ValueError("MeetingSpec.duration_minutes must be an int")
        if self.duration_minutes <= 0:
            raise ValueError("MeetingSpec.duration_minutes must be positive")
        if not self.topic.strip():
            raise ValueError("MeetingSpec.topic must not be empty")


@dataclass(frozen=True)
class MeetingInfo:
    """What to store for a created meeting. Zoom's ``external_id`` is an int that needs 64 bits.

    The host's start link is deliberately absent: it grants host rights and expires, so it is
    fetched fresh with ``host_link`` when the host opens the consultation.
    """

    provider: ProviderName
    external_id: ExternalId
    join_url: str
    password: str | None = field(default=None, repr=False)


@runtime_checkable
class MeetingProvider(Protocol):
    name: ProviderName

    def create(self, spec: MeetingSpec) -> MeetingInfo:
        """Create the meeting. Raises a ``MeetingError`` subclass on failure."""
        ...

    def find(self, spec: MeetingSpec) -> MeetingInfo | None:
        """The meeting an earlier ``create`` of the same ``spec.marker`` made, if it exists
        (a create that timed out may have been carried out). None: create it."""
        ...

    def update(self, external_id: ExternalId, spec: MeetingSpec) -> None:
        """Change topic, time, duration, agenda to match ``spec``."""
        ...

    def delete(self, external_id: ExternalId) -> None:
        """Delete the meeting; a meeting that is already gone counts as deleted."""
        ...

    def host_link(self, external_id: ExternalId) -> str:
        """A link that lets the host start the meeting, valid now (fetch it when needed)."""
        ...
