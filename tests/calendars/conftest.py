from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.calendars.settings import CalendarSettings, calendar_settings
from tests.calendars.servers import CalDav, IcsFiles, ics_server, radicale


@pytest.fixture
def ics() -> Iterator[IcsFiles]:
    with ics_server() as files:
        yield files


@pytest.fixture(scope="module")
def caldav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDav]:
    with radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(autouse=True)
def local_calendars(monkeypatch: pytest.MonkeyPatch) -> Iterator[CalendarSettings]:
    """The test servers are on loopback over plain http: allowed here only."""
    monkeypatch.setenv("INTAKE_CALENDAR_ALLOW_PRIVATE_ADDRESSES", "true")
    monkeypatch.setenv("INTAKE_CALENDAR_ALLOW_HTTP", "true")
    calendar_settings.cache_clear()
    yield calendar_settings()
    calendar_settings.cache_clear()


def settings_with(**values: object) -> CalendarSettings:
    return calendar_settings().model_copy(update=values)


__all__ = ["Path", "settings_with"]
