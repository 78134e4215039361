"""The link provider and the in-memory fake provider."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.meetings.errors import MeetingConfigError, ZoomMeetingNotFound
from app.meetings.fake import FakeMeetingProvider
from app.meetings.link import LinkMeetingProvider
from app.meetings.providers import MeetingProvider, MeetingSpec

TEMPLATE = "https://meet.example.org/{room}"


def spec(**kw: object) -> MeetingSpec:
    values: dict[str, object] = {
        "topic": "Consultation",
        "start": dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC),
        "duration_minutes": 60,
    }
    values.update(kw)
    return MeetingSpec(**values)  # type: ignore[arg-type]


def test_template_rooms_are_unguessable_and_unique() -> None:
    provider = LinkMeetingProvider(TEMPLATE)
    assert isinstance(provider, MeetingProvider)
    urls = [provider.create(spec()).join_url for _ in range(2000)]
    assert len(set(urls)) == 2000
    for url in urls:
        match = re.fullmatch(r"https://meet\.example\.org/([A-Za-z0-9_-]+)", url)
        assert match, url
        assert len(match.group(1)) >= 32  # at least 192 random bits in base64url


def test_the_experts_own_link_wins_over_the_template() -> None:
    info = LinkMeetingProvider(TEMPLATE).create(
        spec(personal_meeting_url="https://whereby.com/dr-example")
    )
    assert info.join_url == info.external_id == "https://whereby.com/dr-example"
    assert info.provider == "link" and info.password is None


def test_update_and_delete_change_nothing_and_the_host_uses_the_same_link() -> None:
    provider = LinkMeetingProvider(TEMPLATE)
    info = provider.create(spec())
    provider.update(info.external_id, spec(duration_minutes=30))
    provider.delete(info.external_id)
    provider.delete(info.external_id)
    assert provider.host_link(info.external_id) == info.join_url


def test_no_link_at_all_is_a_configuration_error() -> None:
    with pytest.raises(MeetingConfigError, match="INTAKE_MEETING_LINK_TEMPLATE"):
        LinkMeetingProvider("").create(spec())
    with pytest.raises(MeetingConfigError):
        LinkMeetingProvider("https://meet.example.org/fixed-room")
    with pytest.raises(MeetingConfigError):
        LinkMeetingProvider("").create(spec(personal_meeting_url="javascript:alert(1)"))


def test_spec_needs_an_aware_start_and_a_positive_duration() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        spec(start=dt.datetime(2026, 12, 1, 9, 0))
    with pytest.raises(ValueError, match="positive"):
        spec(duration_minutes=0)
    with pytest.raises(ValueError, match="int"):
        spec(duration_minutes=30.5)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert spec(start=dt.datetime(2026, 12, 1, 11, 0, tzinfo=plus_two)).start == dt.datetime(
        2026, 12, 1, 9, 0, tzinfo=dt.UTC
    )


def test_fake_provider_behaves_like_zoom_from_outside() -> None:
    provider = FakeMeetingProvider()
    assert isinstance(provider, MeetingProvider)
    info = provider.create(spec())
    assert isinstance(info.external_id, int) and info.external_id > 2**32
    provider.update(info.external_id, spec(duration_minutes=30))
    assert provider.meetings[info.external_id].spec.duration_minutes == 30
    assert provider.host_link(info.external_id) != provider.host_link(info.external_id)
    provider.delete(info.external_id)
    provider.delete(info.external_id)
    assert info.external_id in provider.deleted
    with pytest.raises(ZoomMeetingNotFound):
        provider.host_link(info.external_id)
