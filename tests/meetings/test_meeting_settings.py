"""Choosing and configuring the meeting provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from app.core.settings import SettingsError, load_settings
from app.meetings.factory import build_meeting_provider
from app.meetings.fake import FakeMeetingProvider
from app.meetings.link import LinkMeetingProvider
from app.meetings.providers import MeetingSpec
from app.meetings.zoom import ZoomMeetingProvider
from tests.fakes.zoom_server import FakeZoom

ZOOM = {"zoom_account_id": "acct", "zoom_client_id": "cid", "zoom_client_secret": "secret"}


@pytest.fixture
def fake() -> Iterator[FakeZoom]:
    server = FakeZoom().start()
    yield server
    server.stop()


def test_default_is_link_without_zoom_credentials_and_zoom_with_them() -> None:
    assert load_settings().resolved_meeting_provider == "link"
    assert load_settings(**ZOOM).resolved_meeting_provider == "zoom"
    assert load_settings(meeting_provider="link", **ZOOM).resolved_meeting_provider == "link"
    assert load_settings(meeting_provider="fake").resolved_meeting_provider == "fake"


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["INTAKE_ZOOM_ACCOUNT_ID", "INTAKE_ZOOM_CLIENT_ID", "INTAKE_ZOOM_CLIENT_SECRET"]),
        ({"zoom_account_id": "a", "zoom_client_id": "b"}, ["INTAKE_ZOOM_CLIENT_SECRET"]),
        ({"zoom_client_id": "b", "zoom_client_secret": "c"}, ["INTAKE_ZOOM_ACCOUNT_ID"]),
    ],
)
def test_zoom_without_credentials_names_the_missing_variables(
    given: dict[str, str], missing: list[str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(meeting_provider="zoom", **given)
    message = str(caught.value)
    for name in missing:
        assert name in message
    for name in {
        "INTAKE_ZOOM_ACCOUNT_ID",
        "INTAKE_ZOOM_CLIENT_ID",
        "INTAKE_ZOOM_CLIENT_SECRET",
    } - set(missing):
        assert name not in message


def test_half_configured_zoom_is_refused_even_without_choosing_it() -> None:
    with pytest.raises(SettingsError, match="INTAKE_ZOOM_CLIENT_SECRET"):
        load_settings(zoom_account_id="a", zoom_client_id="b")


def test_link_template_must_hold_a_room_placeholder() -> None:
    with pytest.raises(SettingsError, match="INTAKE_MEETING_LINK_TEMPLATE"):
        load_settings(meeting_link_template="https://meet.example.org/fixed")
    assert load_settings(meeting_link_template="https://meet.example.org/{room}")


def test_secrets_are_masked_in_describe() -> None:
    described = load_settings(**ZOOM, zoom_webhook_secret_token="whsec").describe()
    assert described["INTAKE_ZOOM_CLIENT_SECRET"] == "********"
    assert described["INTAKE_ZOOM_WEBHOOK_SECRET_TOKEN"] == "********"


def test_the_factory_builds_each_provider() -> None:
    assert isinstance(
        build_meeting_provider(load_settings(meeting_provider="fake")), FakeMeetingProvider
    )
    link = build_meeting_provider(
        load_settings(meeting_link_template="https://meet.example.org/{room}")
    )
    assert isinstance(link, LinkMeetingProvider)
    assert isinstance(build_meeting_provider(load_settings(**ZOOM)), ZoomMeetingProvider)


def test_zoom_from_settings_talks_to_the_configured_urls(fake: FakeZoom) -> None:
    settings = load_settings(
        zoom_account_id=fake.account_id,
        zoom_client_id=fake.client_id,
        zoom_client_secret=fake.client_secret,
        zoom_api_base_url=fake.base_url,
        zoom_oauth_base_url=fake.base_url + "/",
        zoom_timeout_seconds=2,
    )
    provider = build_meeting_provider(settings)
    info = provider.create(
        MeetingSpec(
            topic="Consultation",
            start=dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC),
            duration_minutes=60,
            host="expert@example.org",
        )
    )
    assert isinstance(info.external_id, int) and info.external_id in fake.meetings
    assert isinstance(provider, ZoomMeetingProvider) and provider.quota is not None
    assert provider.quota.status("expert@example.org").count == 1
