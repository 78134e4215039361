"""The fake Zoom refuses what Zoom refuses, so client tests against it mean something."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.zoom_server import FakeZoom

GOOD = {
    "topic": "Consultation",
    "type": 2,
    "start_time": "2026-12-01T09:30:00Z",
    "duration": 60,
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def fake() -> Iterator[FakeZoom]:
    server = FakeZoom().start()
    yield server
    server.stop()


@pytest.fixture
def http(fake: FakeZoom) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as client:
        yield client


def token(http: httpx.Client, fake: FakeZoom) -> str:
    resp = http.post(
        "/oauth/token",
        auth=(fake.client_id, fake.client_secret),
        data={"grant_type": "account_credentials", "account_id": fake.account_id},
    )
    assert resp.status_code == 200
    assert resp.json()["token_type"] == "bearer" and resp.json()["expires_in"] == 3600
    return str(resp.json()["access_token"])


@pytest.mark.parametrize(
    ("auth", "data", "error"),
    [
        (
            ("client_test", "wrong"),
            {"grant_type": "account_credentials", "account_id": "acct_test"},
            "invalid_client",
        ),
        (
            ("client_test", "secret_test"),
            {"grant_type": "client_credentials", "account_id": "acct_test"},
            "unsupported_grant_type",
        ),
        (
            ("client_test", "secret_test"),
            {"grant_type": "account_credentials", "account_id": "x"},
            "invalid_request",
        ),
    ],
)
def test_token_call_is_checked(
    http: httpx.Client, auth: tuple[str, str], data: dict[str, str], error: str
) -> None:
    resp = http.post("/oauth/token", auth=auth, data=data)
    assert resp.status_code == 400
    assert resp.json()["error"] == error and resp.json()["reason"]


def test_api_calls_need_a_live_bearer_token(http: httpx.Client, fake: FakeZoom) -> None:
    assert http.get("/v2/meetings/1").json() == {"code": 124, "message": "Invalid access token."}
    bearer = {"Authorization": f"Bearer {token(http, fake)}"}
    assert http.get("/v2/meetings/1", headers=bearer).json()["code"] == 3001
    fake.expire_all_tokens()
    resp = http.get("/v2/meetings/1", headers=bearer)
    assert (resp.status_code, resp.json()["code"]) == (401, 124)


@pytest.mark.parametrize(
    "change",
    [
        {"type": 1},
        {"start_time": "2026-12-01T09:30:00+00:00"},
        {"start_time": "2026-12-01 09:30:00"},
        {"start_time": "2026-13-01T09:30:00Z"},
        {"duration": 0},
        {"duration": "60"},
        {"duration": 1.5},
    ],
)
def test_create_refuses_bad_values_with_code_300(
    http: httpx.Client, fake: FakeZoom, change: dict[str, Any]
) -> None:
    bearer = {"Authorization": f"Bearer {token(http, fake)}"}
    resp = http.post(
        "/v2/users/expert@example.org/meetings", json={**GOOD, **change}, headers=bearer
    )
    assert (resp.status_code, resp.json()["code"]) == (400, 300)
    assert fake.meetings == {}


def test_create_get_patch_delete(http: httpx.Client, fake: FakeZoom) -> None:
    bearer = {"Authorization": f"Bearer {token(http, fake)}"}
    missing = http.post("/v2/users/nobody@example.org/meetings", json=GOOD, headers=bearer)
    assert (missing.status_code, missing.json()["code"]) == (404, 1001)
    created = http.post("/v2/users/expert@example.org/meetings", json=GOOD, headers=bearer)
    assert created.status_code == 201
    meeting_id = created.json()["id"]
    assert isinstance(meeting_id, int) and meeting_id > 2**32
    assert created.json()["start_url"] and created.json()["join_url"]
    patched = http.patch(f"/v2/meetings/{meeting_id}", json={"duration": 30}, headers=bearer)
    assert (patched.status_code, patched.content) == (204, b"")
    assert (
        http.patch(f"/v2/meetings/{meeting_id}", json={"duration": -1}, headers=bearer).status_code
        == 400
    )
    assert http.delete(f"/v2/meetings/{meeting_id}", headers=bearer).status_code == 204
    gone = http.delete(f"/v2/meetings/{meeting_id}", headers=bearer)
    assert (gone.status_code, gone.json()["code"]) == (404, 3001)
    methods = [(c.method, c.status) for c in fake.api_calls()]
    assert methods == [
        ("POST", 404),
        ("POST", 201),
        ("PATCH", 204),
        ("PATCH", 400),
        ("DELETE", 204),
        ("DELETE", 404),
    ]


def test_listing_a_hosts_meetings_pages_with_a_next_page_token(
    http: httpx.Client, fake: FakeZoom
) -> None:
    bearer = {"Authorization": f"Bearer {token(http, fake)}"}
    made = []
    for n in range(5):
        body = {**GOOD, "start_time": f"2026-12-0{n + 1}T09:30:00Z", "agenda": f"a{n}"}
        made.append(
            http.post("/v2/users/expert@example.org/meetings", json=body, headers=bearer).json()
        )
    http.post("/v2/users/other@example.org/meetings", json=GOOD, headers=bearer)
    url = "/v2/users/expert@example.org/meetings"
    seen: list[dict[str, Any]] = []
    token_value = ""
    pages = 0
    while True:
        params = {"type": "scheduled", "page_size": "2"}
        if token_value:
            params["next_page_token"] = token_value
        resp = http.get(url, params=params, headers=bearer)
        assert resp.status_code == 200
        page = resp.json()
        assert page["total_records"] == 5 and len(page["meetings"]) <= 2
        seen += page["meetings"]
        pages += 1
        token_value = page["next_page_token"]
        if not token_value:
            break
    assert pages == 3
    assert [m["id"] for m in seen] == [m["id"] for m in made]  # the other host's is not here
    assert seen[0]["agenda"] == "a0" and seen[0]["join_url"] == made[0]["join_url"]
    assert "password" not in seen[0] and "start_url" not in seen[0]
    bad_type = http.get(url, params={"type": "all"}, headers=bearer)
    assert (bad_type.status_code, bad_type.json()["code"]) == (400, 300)
    stale = http.get(url, params={"next_page_token": "nope"}, headers=bearer)
    assert (stale.status_code, stale.json()["code"]) == (400, 300)
    nobody = http.get("/v2/users/nobody@example.org/meetings", headers=bearer)
    assert (nobody.status_code, nobody.json()["code"]) == (404, 1001)


def test_a_lost_answer_is_carried_out_but_never_answered(
    http: httpx.Client, fake: FakeZoom
) -> None:
    bearer = {"Authorization": f"Bearer {token(http, fake)}"}
    fake.fail_next(1, "lost_answer", hang_seconds=2)
    with pytest.raises(httpx.TimeoutException):
        http.post("/v2/users/expert@example.org/meetings", json=GOOD, headers=bearer, timeout=0.5)
    [meeting] = fake.meetings.values()  # made at "Zoom" all the same
    assert meeting["topic"] == GOOD["topic"]
