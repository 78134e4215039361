"""The Zoom client against a fake Zoom over real HTTP on loopback (tests/fakes/zoom_server.py)."""

from __future__ import annotations

import base64
import datetime as dt
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.meetings import zoom as zoom_module
from app.meetings.errors import (
    ZoomAuthError,
    ZoomMeetingNotFound,
    ZoomRateLimited,
    ZoomRequestError,
    ZoomUnavailable,
    ZoomUserNotFound,
)
from app.meetings.providers import MeetingInfo, MeetingProvider, MeetingSpec
from app.meetings.quota import DailyMeetingQuota, InMemoryUsageStore, seconds_until_reset
from app.meetings.zoom import ZoomClient, ZoomCredentials, ZoomMeetingProvider
from app.outbox.registry import PermanentFailure
from tests.fakes.zoom_server import FakeZoom

HOST = "expert@example.org"


class Sleeps(list[float]):
    """Stands in for time.sleep: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def fake() -> Iterator[FakeZoom]:
    server = FakeZoom().start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_provider(
    fake: FakeZoom,
    sleeps: Sleeps,
    *,
    secret: str | None = None,
    quota: DailyMeetingQuota | None = None,
    **kw: Any,
) -> ZoomMeetingProvider:
    kw.setdefault("timeout_seconds", 5.0)
    kw.setdefault("rng", random.Random(7))
    client = ZoomClient(
        ZoomCredentials(
            account_id=fake.account_id,
            client_id=fake.client_id,
            client_secret=secret if secret is not None else fake.client_secret,
        ),
        api_base_url=fake.base_url,
        oauth_base_url=fake.base_url,
        sleep=sleeps,
        **kw,
    )
    return ZoomMeetingProvider(client, quota=quota)


def spec(**kw: Any) -> MeetingSpec:
    values: dict[str, Any] = {
        "topic": "Consultation C-1042",
        "start": dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
        "duration_minutes": 60,
        "timezone": "Europe/Berlin",
        "agenda": "Expert consultation",
        "host": HOST,
    }
    values.update(kw)
    return MeetingSpec(**values)


# Token ---------------------------------------------------------------------------------------
def test_token_uses_basic_auth_and_form_body_and_is_cached(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps)
    info = provider.create(spec())
    provider.host_link(info.external_id)
    provider.update(info.external_id, spec(duration_minutes=45))
    provider.delete(info.external_id)

    tokens = fake.token_calls()
    assert len(tokens) == 1
    call = tokens[0]
    assert call.method == "POST"
    basic = base64.b64decode(call.headers["authorization"].removeprefix("Basic ")).decode()
    assert basic == f"{fake.client_id}:{fake.client_secret}"
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.form == {"grant_type": ["account_credentials"], "account_id": [fake.account_id]}
    issued = next(iter(fake.tokens))
    assert [c.bearer for c in fake.api_calls()] == [issued] * 4
    assert [c.status for c in fake.api_calls()] == [201, 200, 204, 204]


def test_token_is_replaced_shortly_before_it_expires(fake: FakeZoom, sleeps: Sleeps) -> None:
    clock = FakeMonotonic()
    provider = make_provider(fake, sleeps, monotonic=clock)
    info = provider.create(spec())
    clock.value += 3600 - 301  # five minutes and a second left: still good
    provider.host_link(info.external_id)
    assert len(fake.token_calls()) == 1
    clock.value += 2  # inside the last five minutes: ask for a new one before using it
    provider.host_link(info.external_id)
    assert len(fake.token_calls()) == 2
    bearers = [c.bearer for c in fake.api_calls()]
    assert bearers[0] == bearers[1] != bearers[2]
    assert all(c.status in (200, 201) for c in fake.api_calls())  # never sent a stale token


def test_wrong_credentials_are_a_clear_permanent_error(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps, secret="not-the-secret")
    with pytest.raises(ZoomAuthError) as caught:
        provider.create(spec())
    assert isinstance(caught.value, PermanentFailure)
    assert caught.value.status == 400
    assert caught.value.error == "invalid_client"
    assert "INTAKE_ZOOM_CLIENT_SECRET" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)
    assert fake.api_calls() == []


def test_an_expired_token_is_refreshed_once_for_20_concurrent_calls(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    info = provider.create(spec())
    assert len(fake.token_calls()) == 1

    fake.expire_all_tokens()
    fake.hold_next(20)  # all 20 reach Zoom with the old token before any is answered
    with ThreadPoolExecutor(max_workers=20) as pool:
        links = list(pool.map(lambda _: provider.host_link(info.external_id), range(20)))

    assert len(fake.token_calls()) == 2  # one at the start, exactly one refresh
    assert all(link.startswith(f"https://zoom.us/s/{info.external_id}?zak=") for link in links)
    gets = [c for c in fake.api_calls() if c.method == "GET"]
    assert sorted(c.status for c in gets) == [200] * 20 + [401] * 20
    new_token = fake.token_calls()[1]
    assert new_token.status == 200
    assert {c.bearer for c in gets if c.status == 200} == set(fake.tokens)


def test_a_token_rejected_again_after_refresh_is_not_retried_forever(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    info = provider.create(spec())

    original = fake._issue_token

    def issue_and_forget() -> dict[str, Any]:
        answer = original()
        fake.expire_all_tokens()  # Zoom hands out a token it then refuses
        return answer

    fake._issue_token = issue_and_forget  # type: ignore[method-assign]
    fake.expire_all_tokens()
    with pytest.raises(ZoomUnavailable):
        provider.host_link(info.external_id)
    assert len(fake.token_calls()) == 2
    assert [c.status for c in fake.api_calls() if c.method == "GET"] == [401, 401]


# Rate limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["seconds", "http-date", "iso"])
def test_a_short_429_is_handed_to_the_outbox_at_once_never_slept_in_the_call(
    fake: FakeZoom, sleeps: Sleeps, form: str
) -> None:
    provider = make_provider(fake, sleeps)  # as the service builds it: no waits in a call
    info = provider.create(spec())
    fake.fail_next(1, "429", retry_after=7, form=form)

    with pytest.raises(ZoomRateLimited) as caught:
        provider.host_link(info.external_id)

    assert sleeps == []
    assert 4.5 <= caught.value.retry_after_seconds <= 7.0
    assert caught.value.daily_limit is False and caught.value.counts_as_attempt
    assert [c.status for c in fake.api_calls() if c.method == "GET"] == [429]


def test_the_configured_zoom_client_never_waits_inside_a_call() -> None:
    from app.core.settings import load_settings
    from app.meetings.factory import build_meeting_provider

    settings = load_settings(
        meeting_provider="zoom", zoom_account_id="a", zoom_client_id="b", zoom_client_secret="c"
    )
    provider = build_meeting_provider(settings)
    assert isinstance(provider, ZoomMeetingProvider)
    assert provider.client.max_rate_limit_retries == 0


@pytest.mark.parametrize("form", ["seconds", "http-date", "iso"])
def test_429_waits_as_long_as_retry_after_says_then_succeeds_when_asked_to(
    fake: FakeZoom, sleeps: Sleeps, form: str
) -> None:
    provider = make_provider(fake, sleeps, max_rate_limit_retries=3)
    info = provider.create(spec())
    fake.fail_next(1, "429", retry_after=7, form=form)

    link = provider.host_link(info.external_id)

    assert link.startswith("https://zoom.us/s/")
    assert len(sleeps) == 1
    # Dates have whole seconds: 7 s minus the part of a second gone, minus latency (backoff
    # without the header would be at most 1 s).
    assert 4.5 <= sleeps[0] <= 7.0
    assert [c.status for c in fake.api_calls() if c.method == "GET"] == [429, 200]


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps, backoff_base_seconds=2.0, max_rate_limit_retries=3)
    info = provider.create(spec())
    fake.fail_next(3, "429")

    provider.host_link(info.external_id)

    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        ceiling = 2.0 * 2**attempt
        assert ceiling / 2 <= wait <= ceiling
    assert len(set(sleeps)) == 3


def test_a_long_retry_after_is_handed_to_the_outbox_instead_of_waited(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps, max_retry_wait_seconds=30)
    info = provider.create(spec())
    fake.fail_next(1, "429", retry_after=3600, form="iso")

    with pytest.raises(ZoomRateLimited) as caught:
        provider.host_link(info.external_id)

    assert sleeps == []
    assert 3590 <= caught.value.retry_after_seconds <= 3600
    assert caught.value.daily_limit is False
    assert not isinstance(caught.value, PermanentFailure)


def test_rate_limit_retries_inside_a_call_are_bounded(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps, max_rate_limit_retries=3)
    info = provider.create(spec())
    fake.fail_next(10, "429", retry_after=1, form="seconds")

    with pytest.raises(ZoomRateLimited):
        provider.host_link(info.external_id)

    assert sleeps == [1.0, 1.0, 1.0]
    assert [c.status for c in fake.api_calls() if c.method == "GET"] == [429] * 4


def test_the_daily_cap_is_not_waited_for_and_resets_at_midnight_utc(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    fake.fail_next(1, "daily_limit")

    with pytest.raises(ZoomRateLimited) as caught:
        provider.create(spec())

    assert sleeps == []
    assert caught.value.daily_limit is True
    expected = seconds_until_reset(dt.datetime.now(dt.UTC))
    assert abs(caught.value.retry_after_seconds - expected) < 5


# Failures ------------------------------------------------------------------------------------
def test_a_500_is_retryable_and_not_retried_inside_the_call(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps)
    fake.fail_next(1, "500")

    with pytest.raises(ZoomUnavailable) as caught:
        provider.create(spec())

    assert not isinstance(caught.value, PermanentFailure)
    assert [c.status for c in fake.api_calls()] == [500]
    assert sleeps == []
    assert fake.meetings == {}


def test_a_hanging_zoom_times_out_as_unavailable(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps, timeout_seconds=0.3)
    info = provider.create(spec())
    fake.fail_next(1, "hang", hang_seconds=5)

    started = time.monotonic()
    with pytest.raises(ZoomUnavailable, match=r"within 0\.3s"):
        provider.host_link(info.external_id)
    assert time.monotonic() - started < 2.0


def test_connection_refused_is_unavailable(sleeps: Sleeps) -> None:
    server = FakeZoom().start()
    base = server.base_url
    server.stop()
    client = ZoomClient(
        ZoomCredentials("a", "b", "c"), api_base_url=base, oauth_base_url=base, sleep=sleeps
    )
    with pytest.raises(ZoomUnavailable):
        ZoomMeetingProvider(client).host_link(2**33)


# Meetings ------------------------------------------------------------------------------------
def test_create_sends_what_zoom_expects_and_keeps_the_64_bit_id(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    assert isinstance(provider, MeetingProvider)
    berlin = dt.datetime(2026, 12, 1, 10, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Berlin"))

    info = provider.create(spec(start=berlin, duration_minutes=50, agenda="a" * 2500))

    call = fake.api_calls()[0]
    assert (call.method, call.path) == ("POST", f"/v2/users/{HOST}/meetings")
    body = call.json
    assert body["type"] == 2
    assert body["start_time"] == "2026-12-01T09:30:15Z"
    assert body["duration"] == 50
    assert body["timezone"] == "Europe/Berlin"
    assert body["topic"] == "Consultation C-1042"
    assert len(body["agenda"]) == 2000
    assert body["settings"] == {
        "waiting_room": True,
        "join_before_host": False,
        "mute_upon_entry": True,
    }
    stored = fake.meetings[int(info.external_id)]
    assert isinstance(info.external_id, int) and info.external_id > 2**32
    assert info == MeetingInfo(
        provider="zoom",
        external_id=stored["id"],
        join_url=stored["join_url"],
        password=stored["password"],
    )
    # The host's start link is not kept anywhere in what create returns.
    assert "start_url" not in {f.name for f in fields(MeetingInfo)}
    assert "/s/" not in repr(info) and "zak=" not in repr(info)


def test_a_create_whose_answer_was_lost_is_found_again_across_pages_by_its_marker(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps, timeout_seconds=0.5)
    provider.list_page_size = 2
    day = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    # Five other meetings of the host, one of them with a marker that merely starts alike.
    for n in range(4):
        provider.create(spec(start=day + dt.timedelta(hours=n), agenda=f"Reference C-{n}"))
    provider.create(spec(start=day + dt.timedelta(days=2), agenda="x\n[booking c-1/77]"))
    wanted = spec(start=day + dt.timedelta(days=1), agenda="Reference C-1042\n[booking c-1/7]")
    wanted = MeetingSpec(**{**wanted.__dict__, "marker": "[booking c-1/7]"})
    assert provider.find(wanted) is None  # not made yet: nothing to adopt
    fake.fail_next(1, "lost_answer", hang_seconds=3)

    with pytest.raises(ZoomUnavailable):
        provider.create(wanted)  # Zoom made it; the answer never came

    [made] = [m for m in fake.meetings.values() if m["agenda"].endswith("[booking c-1/7]")]
    before = len(fake.api_calls())
    found = provider.find(wanted)

    assert found == MeetingInfo(
        provider="zoom",
        external_id=made["id"],
        join_url=made["join_url"],
        password=made["password"],
    )
    calls = fake.api_calls()[before:]
    pages = [c for c in calls if c.path == f"/v2/users/{HOST}/meetings"]
    assert len(pages) == 3  # six meetings, two a page; the wanted one is on the last
    assert "next_page_token=" not in pages[0].query and "type=scheduled" in pages[0].query
    assert all("next_page_token=" in c.query for c in pages[1:])
    assert [(c.method, c.path) for c in calls[len(pages) :]] == [
        ("GET", f"/v2/meetings/{made['id']}")
    ]
    assert len(fake.meetings) == 6  # nothing made twice


def test_find_confirms_each_candidate_by_reading_it(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps)
    marker = "[booking c-2/9]"
    wanted = spec(agenda=f"Reference C-1042\n{marker}", marker=marker)
    made = provider.create(wanted)
    # A list without agendas (as older API versions answer): topic and start time pick the
    # candidate, a read of the meeting confirms the marker.
    fake.list_has_agenda = False
    assert provider.find(wanted) == made
    other = "[booking c-3/1]"
    same_slot_other_booking = spec(agenda=f"Reference C-1042\n{other}", marker=other)
    assert provider.find(same_slot_other_booking) is None
    assert [c.path for c in fake.api_calls()][-2:] == [
        f"/v2/users/{HOST}/meetings",
        f"/v2/meetings/{made.external_id}",
    ]
    # Deleted between the list and the read: not found, so the caller creates it again.
    fake.list_has_agenda = True
    request = provider.client.request

    def delete_after_listing(method: str, path: str, **kw: Any) -> Any:
        resp = request(method, path, **kw)
        if path.endswith(f"/users/{HOST}/meetings"):
            fake.meetings.clear()
        return resp

    provider.client.request = delete_after_listing  # type: ignore[method-assign]
    assert provider.find(wanted) is None
    provider.client.request = request  # type: ignore[method-assign]
    # Nothing to look for without a marker; a host Zoom does not know is a permanent error.
    calls = len(fake.api_calls())
    assert provider.find(spec()) is None and len(fake.api_calls()) == calls
    with pytest.raises(ZoomUserNotFound):
        provider.find(spec(host="nobody@example.org", marker=marker))


def test_find_gives_up_after_its_page_limit_rather_than_never_creating(
    fake: FakeZoom, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider(fake, sleeps)
    provider.list_page_size = 1
    monkeypatch.setattr(zoom_module, "LIST_MAX_PAGES", 2)
    day = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for n in range(2):
        provider.create(spec(start=day + dt.timedelta(hours=n)))
    marker = "[booking c-4/2]"
    wanted = spec(start=day + dt.timedelta(days=1), agenda=marker, marker=marker)
    provider.create(wanted)  # third by start time: on a page past the limit

    assert provider.find(wanted) is None
    assert len([c for c in fake.api_calls() if c.method == "GET"]) == 2


def test_update_patches_and_delete_treats_a_missing_meeting_as_done(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    info = provider.create(spec())
    later = dt.datetime(2026, 12, 2, 14, 0, tzinfo=dt.UTC)

    provider.update(info.external_id, spec(start=later, duration_minutes=30))
    assert fake.meetings[int(info.external_id)]["start_time"] == "2026-12-02T14:00:00Z"
    assert fake.meetings[int(info.external_id)]["duration"] == 30

    provider.delete(info.external_id)
    provider.delete(info.external_id)  # already gone: 404 code 3001 counts as done
    provider.delete(str(info.external_id))  # ids read back as text work too

    deletes = [c for c in fake.api_calls() if c.method == "DELETE"]
    assert [(c.path, c.status) for c in deletes] == [
        (f"/v2/meetings/{info.external_id}", 204),
        (f"/v2/meetings/{info.external_id}", 404),
        (f"/v2/meetings/{info.external_id}", 404),
    ]
    assert [c.status for c in fake.api_calls() if c.method == "PATCH"] == [204]


def test_host_link_is_fetched_fresh_each_time(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps)
    info = provider.create(spec())
    first = provider.host_link(info.external_id)
    second = provider.host_link(info.external_id)
    assert first != second
    assert first.startswith(f"https://zoom.us/s/{info.external_id}?zak=")
    assert [c.method for c in fake.api_calls()] == ["POST", "GET", "GET"]


def test_an_unknown_host_is_a_permanent_error_without_the_address(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    with pytest.raises(ZoomUserNotFound) as caught:
        provider.create(spec(host="nobody@example.org"))
    assert isinstance(caught.value, PermanentFailure)
    assert caught.value.code == 1001 and caught.value.status == 404
    assert "nobody" not in str(caught.value)
    assert [c.status for c in fake.api_calls()] == [404]  # not retried


def test_a_value_zoom_refuses_is_a_permanent_error(
    fake: FakeZoom, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider(fake, sleeps)
    good = zoom_module.meeting_body

    def with_offset_time(s: MeetingSpec) -> dict[str, Any]:
        return {**good(s), "start_time": s.start.isoformat()}  # "+00:00", not "Z"

    monkeypatch.setattr(zoom_module, "meeting_body", with_offset_time)
    with pytest.raises(ZoomRequestError) as caught:
        provider.create(spec())
    assert isinstance(caught.value, PermanentFailure)
    assert caught.value.code == 300 and caught.value.status == 400
    assert [c.status for c in fake.api_calls()] == [400]


def test_update_or_host_link_of_a_missing_meeting_is_permanent(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    provider = make_provider(fake, sleeps)
    with pytest.raises(ZoomMeetingNotFound):
        provider.update(2**33 + 5, spec())
    with pytest.raises(ZoomMeetingNotFound):
        provider.host_link(2**33 + 5)


# Daily count ---------------------------------------------------------------------------------
def test_creates_and_updates_are_counted_per_host_per_day(fake: FakeZoom, sleeps: Sleeps) -> None:
    quota = DailyMeetingQuota(InMemoryUsageStore(), limit=100, warn_at=3)
    provider = make_provider(fake, sleeps, quota=quota)

    first = provider.create(spec())
    provider.create(spec(host="Expert@Example.org"))  # same Zoom user, other spelling
    assert quota.status(HOST).count == 2
    assert quota.status(HOST).nearing_cap is False

    provider.update(first.external_id, spec(duration_minutes=30))
    provider.delete(first.external_id)  # deletes are not counted
    with pytest.raises(ZoomUserNotFound):
        provider.create(spec(host="nobody@example.org"))  # refused: not counted

    assert quota.status(HOST).count == 3
    assert quota.status(HOST).nearing_cap is True
    assert quota.status("nobody@example.org").count == 0
    assert quota.status("other@example.org").count == 0


def test_concurrent_creates_are_all_counted(fake: FakeZoom, sleeps: Sleeps) -> None:
    quota = DailyMeetingQuota(InMemoryUsageStore())
    provider = make_provider(fake, sleeps, quota=quota)
    barrier = threading.Barrier(10)

    def create(_: int) -> MeetingInfo:
        barrier.wait()
        return provider.create(spec())

    with ThreadPoolExecutor(max_workers=10) as pool:
        infos = list(pool.map(create, range(10)))
    assert len({i.external_id for i in infos}) == 10
    assert quota.status(HOST).count == 10
    assert len(fake.token_calls()) == 1  # concurrent first use still fetches one token


def test_a_single_401_124_gets_a_new_token_and_one_retry(fake: FakeZoom, sleeps: Sleeps) -> None:
    provider = make_provider(fake, sleeps)
    info = provider.create(spec())
    fake.fail_next(1, "401")

    provider.update(info.external_id, spec(duration_minutes=20))

    assert len(fake.token_calls()) == 2
    patches = [c for c in fake.api_calls() if c.method == "PATCH"]
    assert [c.status for c in patches] == [401, 204]
    assert patches[0].bearer != patches[1].bearer
    assert patches[0].json == patches[1].json  # the same body is sent again


def test_a_failed_early_refresh_keeps_using_the_still_valid_token(
    fake: FakeZoom, sleeps: Sleeps
) -> None:
    clock = FakeMonotonic()
    provider = make_provider(fake, sleeps, monotonic=clock)
    info = provider.create(spec())
    clock.value += 3600 - 60  # inside the refresh margin, not yet expired
    fake.fail_token_next(1, 503)

    provider.host_link(info.external_id)  # refresh fails, the current token still works
    assert [c.status for c in fake.token_calls()] == [200, 503]

    provider.host_link(info.external_id)  # tries again next time, and succeeds
    assert [c.status for c in fake.token_calls()] == [200, 503, 200]

    clock.value += 3600  # the new token's whole lifetime: expired, and Zoom is down
    fake.fail_token_next(1, 503)
    with pytest.raises(ZoomUnavailable):
        provider.host_link(info.external_id)
