"""The calendars' settings, read once from the environment (prefix ``INTAKE_CALENDAR_``).

Their own small settings object, so that the calendars domain stays in its folder; the values
are as plain as the core's (``app/core/settings.py``).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CalendarSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_CALENDAR_", extra="ignore")

    refresh_minutes: int = Field(5, ge=1, le=1440, description="how often each calendar is read")
    timeout_seconds: float = Field(15, gt=0, le=120, description="per read, connect and answer")
    max_bytes: int = Field(
        5_000_000, ge=1000, description="an answer larger than this is refused (not read)"
    )
    max_events: int = Field(20_000, ge=10, description="busy times kept per calendar at most")
    backoff_max_minutes: int = Field(
        240, ge=1, description="the longest wait between tries of a failing calendar"
    )
    alert_after_minutes: int = Field(
        120, ge=1, description="a calendar unreadable this long alerts its expert and staff"
    )
    # Addresses of this machine or its private network are refused unless allowed (a calendar
    # address is typed by a person; the worker must not become a way into the network).
    allow_private_addresses: bool = False
    # Plain http:// sends a secret address or a password in the clear: refused unless allowed.
    allow_http: bool = False


@lru_cache(maxsize=1)
def calendar_settings() -> CalendarSettings:
    return CalendarSettings()
