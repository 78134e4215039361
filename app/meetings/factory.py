"""Build the configured meeting provider (``INTAKE_MEETING_PROVIDER``), one per process."""

from __future__ import annotations

import functools

from app.core.settings import Settings, get_settings
from app.meetings.fake import FakeMeetingProvider
from app.meetings.link import LinkMeetingProvider, can_make_link
from app.meetings.providers import MeetingProvider
from app.meetings.quota import DailyMeetingQuota, InMemoryUsageStore
from app.meetings.zoom import ZoomClient, ZoomCredentials, ZoomMeetingProvider


def build_meeting_provider(
    settings: Settings, *, quota: DailyMeetingQuota | None = None
) -> MeetingProvider:
    kind = settings.resolved_meeting_provider
    if kind == "fake":
        return FakeMeetingProvider()
    if kind == "link":
        return LinkMeetingProvider(settings.meeting_link_template)
    secret = settings.zoom_client_secret.get_secret_value() if settings.zoom_client_secret else ""
    client = ZoomClient(
        ZoomCredentials(
            account_id=settings.zoom_account_id,
            client_id=settings.zoom_client_id,
            client_secret=secret,
        ),
        api_base_url=settings.zoom_api_base_url,
        oauth_base_url=settings.zoom_oauth_base_url,
        timeout_seconds=settings.zoom_timeout_seconds,
        # A 429 goes back to the outbox with its Retry-After: nothing sleeps inside a call.
        max_rate_limit_retries=0,
    )
    # Until a table backs the count (see docs/zoom.md) it is per process.
    return ZoomMeetingProvider(client, quota=quota or DailyMeetingQuota(InMemoryUsageStore()))


@functools.lru_cache(maxsize=1)
def get_meeting_provider() -> MeetingProvider:
    """The process-wide provider: one Zoom client, so one cached token per process."""
    return build_meeting_provider(get_settings())


def can_hold_meeting(personal_meeting_link: str | None, settings: Settings | None = None) -> bool:
    """Whether a consultation booked with this expert gets a meeting, by the provider a booking
    uses (``resolved_meeting_provider``). Only the ``link`` provider can be left with nothing:
    no personal link and no ``INTAKE_MEETING_LINK_TEMPLATE``, and its ``meetings.create`` row
    ends among the dead letters. Zoom hosts on the expert's Zoom user, else their e-mail
    address, which every profile has; the fake makes any meeting."""
    settings = settings or get_settings()
    if settings.resolved_meeting_provider != "link":
        return True
    return can_make_link(personal_meeting_link, settings.meeting_link_template)
