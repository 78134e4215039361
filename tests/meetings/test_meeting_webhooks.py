"""Zoom webhook checks: signature, freshness, URL validation, event parsing and duplicates.

Expected values are computed here with hmac directly, from Zoom's published formula, not with
the module's own helpers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from app.meetings.errors import InvalidZoomWebhook, MalformedZoomEvent
from app.meetings.webhooks import parse_event, url_validation_response, verify_signature

SECRET = "whsec_test_token"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
TS = str(int(NOW.timestamp()))


def zoom_signature(secret: str, ts: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


def event_body(
    event: str = "meeting.ended", meeting_id: object = 85746065432, **kw: object
) -> bytes:
    body = {
        "event": event,
        "event_ts": kw.pop("event_ts", 1763899200123),
        "payload": {
            "account_id": "acct_test",
            "object": {
                "id": meeting_id,
                "uuid": kw.pop("uuid", "4444AAAiAAAAAiAiAiiAii=="),
                "host_id": "u_expert1",
                "topic": "Consultation",
            },
        },
    }
    # Zoom's own spacing, which re-serialising would change.
    return json.dumps(body, indent=None, separators=(", ", ": ")).encode()


def test_a_correct_signature_passes() -> None:
    body = event_body()
    verify_signature(SECRET, TS, zoom_signature(SECRET, TS, body), body, NOW)


@pytest.mark.parametrize(
    ("secret", "body_sent"),
    [("another-secret", None), (SECRET, b'{"event": "meeting.deleted"}')],
    ids=["wrong-secret", "tampered-body"],
)
def test_a_wrong_signature_is_refused(secret: str, body_sent: bytes | None) -> None:
    body = event_body()
    signature = zoom_signature(secret, TS, body)
    with pytest.raises(InvalidZoomWebhook, match="does not match"):
        verify_signature(SECRET, TS, signature, body_sent or body, NOW)


def test_the_signature_covers_the_raw_bytes_not_the_parsed_json() -> None:
    body = event_body()
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reserialised != body
    with pytest.raises(InvalidZoomWebhook):
        verify_signature(SECRET, TS, zoom_signature(SECRET, TS, body), reserialised, NOW)


def test_the_timestamp_is_part_of_the_signature() -> None:
    body = event_body()
    other_ts = str(int(NOW.timestamp()) - 10)
    with pytest.raises(InvalidZoomWebhook, match="does not match"):
        verify_signature(SECRET, other_ts, zoom_signature(SECRET, TS, body), body, NOW)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-299, True), (-301, False), (-86400, False), (20, True), (3600, False)],
)
def test_stale_and_future_timestamps_are_refused(offset: int, ok: bool) -> None:
    body = event_body()
    ts = str(int(NOW.timestamp()) + offset)
    signature = zoom_signature(SECRET, ts, body)  # correctly signed, only the age differs
    if ok:
        verify_signature(SECRET, ts, signature, body, NOW)
    else:
        with pytest.raises(InvalidZoomWebhook, match=r"too old|future"):
            verify_signature(SECRET, ts, signature, body, NOW)


@pytest.mark.parametrize(
    ("ts", "sig"), [(None, "v0=abc"), (TS, None), ("", "v0=abc"), ("yesterday", "v0=abc")]
)
def test_missing_or_unreadable_headers_are_refused(ts: str | None, sig: str | None) -> None:
    with pytest.raises(InvalidZoomWebhook):
        verify_signature(SECRET, ts, sig, event_body(), NOW)


def test_no_configured_secret_refuses_everything() -> None:
    body = event_body()
    with pytest.raises(InvalidZoomWebhook):
        verify_signature("", TS, zoom_signature("", TS, body), body, NOW)


def test_url_validation_answer() -> None:
    plain = "qgg8vlvZRS6UYooatFL8Aw"
    answer = url_validation_response(SECRET, plain)
    expected = hmac.new(SECRET.encode(), plain.encode(), hashlib.sha256).hexdigest()
    assert answer == {"plainToken": plain, "encryptedToken": expected}
    body = json.dumps(
        {"event": "endpoint.url_validation", "event_ts": 1, "payload": {"plainToken": plain}}
    )
    event = parse_event(body)
    assert event.is_url_validation and event.plain_token == plain


@pytest.mark.parametrize("meeting_id", [85746065432, "85746065432"])
def test_meeting_ids_come_as_numbers_or_strings(meeting_id: object) -> None:
    event = parse_event(event_body(meeting_id=meeting_id))
    assert event.event == "meeting.ended"
    assert event.meeting_id == 85746065432
    assert event.meeting_uuid == "4444AAAiAAAAAiAiAiiAii=="
    assert event.event_ts == 1763899200123


def test_a_redelivered_or_replayed_event_has_the_same_key() -> None:
    first = parse_event(event_body())
    again = parse_event(event_body())  # Zoom's retry, or a replay inside the window
    later = parse_event(event_body(event_ts=1763899260000))
    other_event = parse_event(event_body(event="meeting.started"))
    other_meeting = parse_event(event_body(uuid="5555BBBiBBBBBiBiBiiBii=="))
    keys = {first.idempotency_key}
    assert again.idempotency_key in keys  # duplicate detected
    assert len({k.idempotency_key for k in (first, later, other_event, other_meeting)}) == 4
    assert first.idempotency_key == "zoom:meeting.ended:4444AAAiAAAAAiAiAiiAii==:1763899200123"


def test_an_event_without_timestamp_is_keyed_by_its_body() -> None:
    a = parse_event(b'{"event": "meeting.deleted", "payload": {"object": {"id": 1}}}')
    b = parse_event(b'{"event": "meeting.deleted", "payload": {"object": {"id": 1}}}')
    c = parse_event(b'{"event": "meeting.deleted", "payload": {"object": {"id": 2}}}')
    assert a.idempotency_key == b.idempotency_key != c.idempotency_key


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"payload": {}}',
        b'{"event": "meeting.ended", "payload": {"object": {"id": "abc"}}}',
        b'{"event": "meeting.ended", "payload": {"object": {"id": true}}}',
        b'{"event": "meeting.ended", "payload": {"object": {"id": -5}}}',
    ],
)
def test_malformed_events_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedZoomEvent):
        parse_event(body)
