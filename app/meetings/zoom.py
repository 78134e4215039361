"""Zoom meetings through a Server-to-Server OAuth app (sync httpx; safe to share across threads).

- One access token per process (per ``ZoomClient``), fetched with the account credentials grant
  and replaced shortly before it expires. There is no refresh token: a new token is simply asked
  for. A ``401`` with code ``124`` means Zoom no longer accepts the token: the first caller that
  sees it fetches one new token and every other caller that used the same token reuses it (a
  lock and a generation counter), then each retries once.
- ``429`` raises ``ZoomRateLimited`` with ``retry_after_seconds`` at once: ``Retry-After``
  (seconds, HTTP date or ISO-8601 time), else exponential backoff with jitter, else (the
  per-user daily cap) the time until 00:00 UTC. The outbox reschedules the row for then: a
  worker never sleeps inside a call while its transaction holds locks that a person's cancel
  or booking needs. (``max_rate_limit_retries`` > 0 waits short ones inside the call instead,
  for callers that hold nothing.)
- ``find`` looks for a meeting an earlier create made (its answer lost to a timeout): Zoom
  has no idempotency key, so each create carries a marker in its agenda and a retried create
  first lists the host's meetings (``GET /users/{userId}/meetings``, paged) for it.
- ``5xx``, timeouts and connection failures raise ``ZoomUnavailable`` at once: the outbox retries
  with backoff, so nothing loops here.
- ``{code, message}`` errors map to ``ZoomRequestError`` subclasses, which are permanent.

The host's ``start_url`` is never returned from ``create``; ``host_link`` fetches a fresh one.
Paths carry the host's e-mail, so logs name the operation, never the URL.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn, Self
from urllib.parse import quote

import httpx
import structlog

from app.core.http import tls_context
from app.meetings.errors import (
    MeetingConfigError,
    ZoomAuthError,
    ZoomError,
    ZoomMeetingNotFound,
    ZoomRateLimited,
    ZoomRequestError,
    ZoomUnavailable,
    ZoomUserNotFound,
)
from app.meetings.providers import ExternalId, MeetingInfo, MeetingSpec, ProviderName
from app.meetings.quota import DailyMeetingQuota, seconds_until_reset

log = structlog.get_logger(__name__)

INVALID_TOKEN = 124
BAD_VALUE = 300
USER_NOT_FOUND = 1001
MEETING_NOT_FOUND = 3001
SCHEDULED_MEETING = 2
TOPIC_MAX = 200
AGENDA_MAX = 2000
# Listing a host's meetings: Zoom's largest page, and how many pages we read at most.
LIST_PAGE_SIZE = 300
LIST_MAX_PAGES = 20
# Ask for a new token this long before the old one expires (at most a tenth of its lifetime).
TOKEN_REFRESH_MARGIN_SECONDS = 300.0

_SECONDS = re.compile(r"^\d+(\.\d+)?$")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None if absent or unreadable.

    Zoom is not consistent: a number of seconds, an HTTP date (``Wed, 21 Oct 2026 07:28:00
    GMT``) or an ISO-8601 time (``2026-10-21T07:28:00Z``). Times in the past give 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _SECONDS.match(text):
        return float(text)
    when: dt.datetime | None = None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def format_start_time(start: dt.datetime) -> str:
    """Zoom's UTC form ``yyyy-MM-ddTHH:mm:ssZ`` (no fraction, no offset)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meeting_body(spec: MeetingSpec) -> dict[str, Any]:
    """The JSON body for create and update: a scheduled meeting, guests wait for the host."""
    return {
        "topic": spec.topic[:TOPIC_MAX],
        "type": SCHEDULED_MEETING,
        "start_time": format_start_time(spec.start),
        "duration": spec.duration_minutes,
        "timezone": spec.timezone,
        "agenda": spec.agenda[:AGENDA_MAX],
        "settings": {
            "waiting_room": True,
            "join_before_host": False,
            "mute_upon_entry": True,
        },
    }


def _json_object(resp: httpx.Response) -> Mapping[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_code(resp: httpx.Response) -> int | None:
    code = _json_object(resp).get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


def _is_daily_limit(resp: httpx.Response) -> bool:
    if "daily" in resp.headers.get("X-RateLimit-Type", "").lower():
        return True
    message = str(_json_object(resp).get("message", "")).lower()
    return "daily" in message or "per-day" in message


def _raise_request_error(resp: httpx.Response, operation: str) -> NoReturn:
    code = _error_code(resp)
    status = resp.status_code
    if code == USER_NOT_FOUND:
        raise ZoomUserNotFound(
            f"{operation}: the host is not a user of this Zoom account", status=status, code=code
        )
    if code == MEETING_NOT_FOUND:
        raise ZoomMeetingNotFound(
            f"{operation}: the meeting does not exist", status=status, code=code
        )
    # Zoom's message for other codes names fields or ids, not people; keep it short.
    message = str(_json_object(resp).get("message", ""))[:200]
    if code == BAD_VALUE:
        raise ZoomRequestError(
            f"{operation}: Zoom refused a value: {message}", status=status, code=code
        )
    raise ZoomRequestError(
        f"{operation}: Zoom refused the request: {message}", status=status, code=code
    )


@dataclass(frozen=True)
class ZoomCredentials:
    account_id: str
    client_id: str
    client_secret: str = field(repr=False)


class ZoomClient:
    """Authenticated calls to the Zoom REST API. Share one instance per process.

    ``sleep``, ``monotonic``, ``wall_clock`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        credentials: ZoomCredentials,
        *,
        api_base_url: str = "https://api.zoom.us",
        oauth_base_url: str = "https://zoom.us",
        timeout_seconds: float = 10.0,
        max_rate_limit_retries: int = 0,
        max_retry_wait_seconds: float = 30.0,
        backoff_base_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = _utcnow,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (credentials.account_id and credentials.client_id and credentials.client_secret):
            raise MeetingConfigError(
                "Zoom needs INTAKE_ZOOM_ACCOUNT_ID, INTAKE_ZOOM_CLIENT_ID and "
                "INTAKE_ZOOM_CLIENT_SECRET"
            )
        self._credentials = credentials
        self.api_base_url = api_base_url.rstrip("/")
        self.oauth_base_url = oauth_base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.max_rate_limit_retries = max_rate_limit_retries
        self.max_retry_wait_seconds = max_retry_wait_seconds
        self.backoff_base_seconds = backoff_base_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            verify=tls_context(),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "asylum-intake"},
            follow_redirects=False,
        )
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._generation = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Token ---------------------------------------------------------------------------------
    def _fetch_token_locked(self) -> None:
        """Ask Zoom for a new token. Caller holds ``self._lock``."""
        creds = self._credentials
        try:
            resp = self._http.post(
                f"{self.oauth_base_url}/oauth/token",
                auth=(creds.client_id, creds.client_secret),
                data={"grant_type": "account_credentials", "account_id": creds.account_id},
            )
        except httpx.TimeoutException as exc:
            raise ZoomUnavailable("Zoom token call timed out") from exc
        except httpx.TransportError as exc:
            raise ZoomUnavailable(f"cannot reach Zoom for a token: {type(exc).__name__}") from exc
        if resp.status_code >= 500:
            raise ZoomUnavailable(f"Zoom token call answered {resp.status_code}")
        if resp.status_code == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After"), self._wall_clock())
            raise ZoomRateLimited(
                "Zoom rate-limited the token call",
                retry_after_seconds=wait if wait is not None else self.backoff_base_seconds,
                daily_limit=False,
            )
        body = _json_object(resp)
        if resp.status_code != 200:
            error = str(body.get("error", ""))[:100]
            reason = str(body.get("reason", ""))[:200]
            raise ZoomAuthError(
                f"Zoom refused the app's credentials (HTTP {resp.status_code} {error}: {reason}); "
                "check INTAKE_ZOOM_ACCOUNT_ID, INTAKE_ZOOM_CLIENT_ID, INTAKE_ZOOM_CLIENT_SECRET "
                "and that the Server-to-Server OAuth app is activated",
                status=resp.status_code,
                error=error,
            )
        token = body.get("access_token")
        expires_in = body.get("expires_in", 3600)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise ZoomUnavailable("Zoom's token answer had no access_token/expires_in")
        margin = min(TOKEN_REFRESH_MARGIN_SECONDS, float(expires_in) / 10)
        self._token = token
        self._expires_at = self._monotonic() + float(expires_in)
        self._refresh_at = self._expires_at - margin
        self._generation += 1
        log.info("zoom_token_fetched", generation=self._generation, expires_in=expires_in)

    def _current_token(self) -> tuple[str, int]:
        with self._lock:
            now = self._monotonic()
            if self._token is not None and now < self._refresh_at:
                return self._token, self._generation
            if self._token is not None and now < self._expires_at:
                # Early refresh: if Zoom is briefly unavailable, the current token still works.
                try:
                    self._fetch_token_locked()
                except ZoomUnavailable:
                    log.warning("zoom_token_early_refresh_failed")
            else:
                self._token = None
                self._fetch_token_locked()
            assert self._token is not None
            return self._token, self._generation

    def _token_after_rejection(self, rejected_generation: int) -> tuple[str, int]:
        """Zoom rejected the token of ``rejected_generation``: replace it once for everyone."""
        with self._lock:
            if self._token is None or self._generation == rejected_generation:
                self._token = None
                self._fetch_token_locked()
            assert self._token is not None
            return self._token, self._generation

    # Requests ------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_base_seconds * 2.0**attempt, self.max_retry_wait_seconds)
        return ceiling * self._rng.uniform(0.5, 1.0)

    def _rate_limit_wait(self, resp: httpx.Response, attempt: int) -> tuple[float, bool]:
        daily = _is_daily_limit(resp)
        now = self._wall_clock()
        wait = parse_retry_after(resp.headers.get("Retry-After"), now)
        if wait is not None:
            return wait, daily
        if daily:
            return seconds_until_reset(now), True
        return self._backoff(attempt), False

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send one API call with auth and one token refresh on 124; a 429 raises
        ``ZoomRateLimited`` (or, with ``max_rate_limit_retries``, is waited a few times).

        Returns any response below 500 other than 401/429; the caller checks the status.
        """
        url = f"{self.api_base_url}{path}"
        token, generation = self._current_token()
        refreshed = False
        rate_limited = 0
        while True:
            try:
                resp = self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TimeoutException as exc:
                raise ZoomUnavailable(
                    f"{operation}: Zoom did not answer within {self.timeout_seconds}s"
                ) from exc
            except httpx.TransportError as exc:
                raise ZoomUnavailable(
                    f"{operation}: cannot reach Zoom: {type(exc).__name__}"
                ) from exc

            if resp.status_code == 401:
                code = _error_code(resp)
                if code == INVALID_TOKEN and not refreshed:
                    log.info("zoom_token_rejected", operation=operation, generation=generation)
                    token, generation = self._token_after_rejection(generation)
                    refreshed = True
                    continue
                if code == INVALID_TOKEN:
                    # Another process with the same app may have replaced it meanwhile.
                    raise ZoomUnavailable(f"{operation}: Zoom rejected a freshly issued token")
                raise ZoomAuthError(
                    f"{operation}: Zoom answered 401 (code {code})", status=401, error=str(code)
                )

            if resp.status_code == 429:
                wait, daily = self._rate_limit_wait(resp, rate_limited)
                if daily or wait > self.max_retry_wait_seconds:
                    log.warning("zoom_rate_limited", operation=operation, daily=daily, wait=wait)
                    raise ZoomRateLimited(
                        f"{operation}: Zoom rate limit"
                        + (" (per-user daily meeting cap)" if daily else ""),
                        retry_after_seconds=wait,
                        daily_limit=daily,
                    )
                if rate_limited >= self.max_rate_limit_retries:
                    # Handed to the outbox, which is due again after ``wait``: no sleeping
                    # here while the caller's transaction holds its locks.
                    log.info("zoom_rate_limited", operation=operation, wait=round(wait, 2))
                    raise ZoomRateLimited(
                        f"{operation}: Zoom rate limit"
                        + (f" (still, after {rate_limited} retries)" if rate_limited else ""),
                        retry_after_seconds=wait,
                        daily_limit=False,
                    )
                rate_limited += 1
                log.info("zoom_rate_limit_wait", operation=operation, wait=round(wait, 2))
                self._sleep(wait)
                continue

            if resp.status_code >= 500:
                raise ZoomUnavailable(f"{operation}: Zoom answered {resp.status_code}")
            return resp


def _meeting_id(value: ExternalId) -> int:
    """Zoom meeting ids are positive integers that need 64 bits; accept their digit strings."""
    if isinstance(value, bool):
        raise ValueError("not a Zoom meeting id")
    if isinstance(value, str):
        if not value.isdigit():
            raise ValueError("not a Zoom meeting id")
        value = int(value)
    if value <= 0 or value >= 2**63:
        raise ValueError("not a Zoom meeting id")
    return value


def _may_carry(item: Mapping[str, Any], spec: MeetingSpec) -> bool:
    """Whether a listed meeting may be the one of ``spec.marker``: by its agenda when the list
    has it (Zoom's current API does), else by topic and start time (confirmed by a read)."""
    agenda = item.get("agenda")
    if isinstance(agenda, str):
        return spec.marker in agenda
    return item.get("topic") == spec.topic[:TOPIC_MAX] and item.get(
        "start_time"
    ) == format_start_time(spec.start)


class ZoomMeetingProvider:
    """``MeetingProvider`` over a ``ZoomClient``; counts writes per host in ``quota``."""

    name: ProviderName = "zoom"

    def __init__(
        self,
        client: ZoomClient,
        *,
        quota: DailyMeetingQuota | None = None,
        list_page_size: int = LIST_PAGE_SIZE,
    ) -> None:
        self.client = client
        self.quota = quota
        self.list_page_size = list_page_size

    def _count_write(self, host: str) -> None:
        if self.quota is None:
            return
        status = self.quota.record(host)
        if status.nearing_cap:
            # The host's address stays out of the log; the count says enough to act on.
            log.warning("zoom_daily_cap_near", count=status.count, limit=status.limit)

    @staticmethod
    def _host(spec: MeetingSpec) -> str:
        if not spec.host.strip():
            raise MeetingConfigError("a Zoom meeting needs a host (Zoom user e-mail or id)")
        return spec.host.strip()

    def create(self, spec: MeetingSpec) -> MeetingInfo:
        host = self._host(spec)
        resp = self.client.request(
            "POST",
            f"/v2/users/{quote(host, safe='@')}/meetings",
            operation="create meeting",
            json=meeting_body(spec),
        )
        if resp.status_code not in (200, 201):
            _raise_request_error(resp, "create meeting")
        self._count_write(host)
        data = _json_object(resp)
        raw_id = data.get("id")
        try:
            if not isinstance(raw_id, int | str):
                raise TypeError("no id")
            meeting_id = _meeting_id(raw_id)
        except (TypeError, ValueError):
            raise ZoomError("create meeting: Zoom's answer had no usable id") from None
        join_url = data.get("join_url")
        if not isinstance(join_url, str) or not join_url.startswith("https://"):
            raise ZoomError("create meeting: Zoom's answer had no join_url")
        password = data.get("password")
        log.info("zoom_meeting_created", meeting_id=meeting_id)
        return MeetingInfo(
            provider="zoom",
            external_id=meeting_id,
            join_url=join_url,
            password=password if isinstance(password, str) and password else None,
        )

    def find(self, spec: MeetingSpec) -> MeetingInfo | None:
        """The meeting of ``spec.marker`` that an earlier create made, if Zoom has one.

        Pages through the host's scheduled meetings (``type=scheduled``: upcoming, live and
        unexpired past ones) and reads each candidate with ``GET /meetings/{id}`` (the list
        has no password) to confirm the marker in its agenda.
        """
        if not spec.marker:
            return None
        host = self._host(spec)
        token = ""
        for _ in range(LIST_MAX_PAGES):
            params: dict[str, str | int] = {"type": "scheduled", "page_size": self.list_page_size}
            if token:
                params["next_page_token"] = token
            resp = self.client.request(
                "GET",
                f"/v2/users/{quote(host, safe='@')}/meetings",
                operation="list meetings",
                params=params,
            )
            if resp.status_code != 200:
                _raise_request_error(resp, "list meetings")
            data = _json_object(resp)
            items = data.get("meetings")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and _may_carry(item, spec):
                    found = self._confirm(item.get("id"), spec)
                    if found is not None:
                        log.info("zoom_meeting_found", meeting_id=found.external_id)
                        return found
            next_token = data.get("next_page_token")
            if not isinstance(next_token, str) or not next_token:
                return None
            token = next_token
        # A host with thousands of meetings: give up looking rather than never creating.
        log.warning("zoom_find_gave_up", pages=LIST_MAX_PAGES)
        return None

    def _confirm(self, raw_id: object, spec: MeetingSpec) -> MeetingInfo | None:
        try:
            if not isinstance(raw_id, int | str):
                return None
            meeting_id = _meeting_id(raw_id)
        except ValueError:
            return None
        resp = self.client.request("GET", f"/v2/meetings/{meeting_id}", operation="get meeting")
        if resp.status_code == 404 and _error_code(resp) == MEETING_NOT_FOUND:
            return None  # deleted since the list was read
        if resp.status_code != 200:
            _raise_request_error(resp, "get meeting")
        data = _json_object(resp)
        agenda = data.get("agenda")
        join_url = data.get("join_url")
        if not isinstance(agenda, str) or spec.marker not in agenda:
            return None
        if not isinstance(join_url, str) or not join_url.startswith("https://"):
            raise ZoomError("get meeting: Zoom's answer had no join_url")
        password = data.get("password")
        return MeetingInfo(
            provider="zoom",
            external_id=meeting_id,
            join_url=join_url,
            password=password if isinstance(password, str) and password else None,
        )

    def update(self, external_id: ExternalId, spec: MeetingSpec) -> None:
        host = self._host(spec)
        meeting_id = _meeting_id(external_id)
        resp = self.client.request(
            "PATCH",
            f"/v2/meetings/{meeting_id}",
            operation="update meeting",
            json=meeting_body(spec),
        )
        if resp.status_code not in (200, 204):
            _raise_request_error(resp, "update meeting")
        self._count_write(host)
        log.info("zoom_meeting_updated", meeting_id=meeting_id)

    def delete(self, external_id: ExternalId) -> None:
        meeting_id = _meeting_id(external_id)
        resp = self.client.request(
            "DELETE", f"/v2/meetings/{meeting_id}", operation="delete meeting"
        )
        if resp.status_code in (200, 204):
            log.info("zoom_meeting_deleted", meeting_id=meeting_id)
            return
        if resp.status_code == 404 and _error_code(resp) == MEETING_NOT_FOUND:
            log.info("zoom_meeting_already_gone", meeting_id=meeting_id)
            return
        _raise_request_error(resp, "delete meeting")

    def host_link(self, external_id: ExternalId) -> str:
        meeting_id = _meeting_id(external_id)
        resp = self.client.request("GET", f"/v2/meetings/{meeting_id}", operation="get meeting")
        if resp.status_code != 200:
            _raise_request_error(resp, "get meeting")
        start_url = _json_object(resp).get("start_url")
        if not isinstance(start_url, str) or not start_url.startswith("https://"):
            raise ZoomError("get meeting: Zoom's answer had no start_url")
        return start_url
