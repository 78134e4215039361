"""A local fake of the parts of Zoom the service uses: a real HTTP server on 127.0.0.1.

It checks what Zoom checks (see docs/zoom.md):

- ``POST /oauth/token``: HTTP Basic ``client_id:client_secret`` and a form body with
  ``grant_type=account_credentials`` and the right ``account_id``; else ``400
  {"reason", "error"}``. Tokens expire after ``token_ttl`` seconds.
- API calls need ``Authorization: Bearer <a live token>``; else ``401 {"code": 124}``.
- ``POST /v2/users/{userId}/meetings``: the user must exist (``404`` code ``1001``); ``type`` 2,
  ``start_time`` ``yyyy-MM-ddTHH:mm:ssZ``, ``duration`` a positive int, ``topic`` a string (else
  ``400`` code ``300``). ``201`` with an id above 2**32.
- ``GET /v2/users/{userId}/meetings``: the host's scheduled meetings, paged as Zoom pages
  them: ``type`` one of ``scheduled`` (every unexpired one), ``live``, ``upcoming``,
  ``upcoming_meetings``, ``previous_meetings`` (else ``400`` code ``300``); ``page_size``
  (default 30, at most 300); ``next_page_token`` (opaque, valid 15 minutes; an unknown or
  expired one is ``400`` code ``300``). Answer ``{page_size, total_records,
  next_page_token ("" on the last page), meetings: [{uuid, id, host_id, topic, type,
  start_time, duration, timezone, agenda, created_at, join_url}]}``: no password, no start
  link (``GET /v2/meetings/{id}`` has those).
- ``GET`` / ``PATCH`` / ``DELETE /v2/meetings/{id}``: ``200`` / ``204`` / ``204``; unknown id:
  ``404`` code ``3001``.

Faults for the next N API calls: ``fail_next(n, "429", retry_after=..., form=...)``, ``"500"``,
``"401"`` (code 124 although the token is live),
``"hang"`` (sleeps ``hang_seconds``), ``"daily_limit"``, ``"lost_answer"`` (the call is
carried out - a create makes its meeting - then the answer never comes: the connection is held
``hang_seconds``, past the client's timeout, and closed); ``expire_all_tokens()`` makes every
issued token invalid at once; ``hold_next(n)`` makes the next n API calls wait for each other,
so n concurrent clients all reach the server before any is answered; ``gate_next()`` holds the
next API call until the test opens the gate (``Gate.arrived`` tells that it is there).
Every request is recorded in ``calls``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

START_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MEETING_PATH = re.compile(r"^/v2/meetings/([^/]+)$")
CREATE_PATH = re.compile(r"^/v2/users/([^/]+)/meetings$")


@dataclass
class RecordedCall:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None


LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")
PAGE_TOKEN_SECONDS = 15 * 60


@dataclass
class Gate:
    """One held API call: ``arrived`` is set when it reaches the server; it is answered once
    ``open`` is set (or after ``timeout`` seconds)."""

    arrived: threading.Event = field(default_factory=threading.Event)
    open: threading.Event = field(default_factory=threading.Event)
    timeout: float = 30.0


@dataclass
class Fault:
    kind: str  # "401", "429", "500", "hang", "daily_limit", "lost_answer"
    retry_after: float | None = None
    form: str = "seconds"  # "seconds", "http-date", "iso"
    hang_seconds: float = 5.0


@dataclass
class FakeZoom:
    account_id: str = "acct_test"
    client_id: str = "client_test"
    client_secret: str = "secret_test"
    token_ttl: int = 3600
    users: dict[str, str] = field(
        default_factory=lambda: {"expert@example.org": "u_expert1", "other@example.org": "u_other2"}
    )

    def __post_init__(self) -> None:
        # Zoom's current list answer carries each meeting's agenda; False answers as older
        # versions of the API did, without it.
        self.list_has_agenda = True
        self.calls: list[RecordedCall] = []
        self.meetings: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}
        self._faults: deque[Fault] = deque()
        self._token_faults: deque[int] = deque()
        self._hold: threading.Barrier | None = None
        self._hold_left = 0
        self._gates: deque[Gate] = deque()
        self._page_tokens: dict[str, tuple[float, list[int], int]] = {}
        self._lock = threading.Lock()
        self._next_id = 2**32 + 7_000_000_000 + secrets.randbelow(1000)
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeZoom:
        fake = self

        class Handler(_Handler):
            zoom = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Controls --------------------------------------------------------------------------------
    def fail_next(self, n: int, kind: str, **kw: Any) -> None:
        with self._lock:
            for _ in range(n):
                self._faults.append(Fault(kind=kind, **kw))

    def fail_token_next(self, n: int, status: int = 500) -> None:
        """The next n token calls answer ``status`` (5xx: Zoom trouble)."""
        with self._lock:
            self._token_faults.extend([status] * n)

    def expire_all_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def hold_next(self, n: int, timeout: float = 10.0) -> None:
        with self._lock:
            self._hold = threading.Barrier(n, timeout=timeout)
            self._hold_left = n

    def gate_next(self, timeout: float = 30.0) -> Gate:
        gate = Gate(timeout=timeout)
        with self._lock:
            self._gates.append(gate)
        return gate

    def add_user(self, email: str, user_id: str) -> None:
        self.users[email] = user_id

    # Views for assertions ------------------------------------------------------------------
    def token_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.path == "/oauth/token"]

    def api_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.path.startswith("/v2/")]

    # Internals -------------------------------------------------------------------------------
    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def meetings_of(self, email: str) -> list[dict[str, Any]]:
        """The live meetings whose host is this user (by e-mail)."""
        host_id = self.users.get(email.lower())
        with self._lock:
            return [m for m in self.meetings.values() if m["host_id"] == host_id]

    def _take_gate(self) -> Gate | None:
        with self._lock:
            return self._gates.popleft() if self._gates else None

    def _take_hold(self) -> threading.Barrier | None:
        with self._lock:
            if self._hold is None or self._hold_left <= 0:
                return None
            self._hold_left -= 1
            return self._hold

    def _issue_token(self) -> dict[str, Any]:
        token = "tok_" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.token_ttl,
            "scope": "meeting:write:meeting:admin meeting:read:meeting:admin",
            "api_url": "https://api.zoom.us",
        }

    def _token_valid(self, token: str | None) -> bool:
        with self._lock:
            expiry = self.tokens.get(token or "")
            return expiry is not None and expiry > time.monotonic()

    def _new_meeting_id(self) -> int:
        with self._lock:
            self._next_id += 1 + secrets.randbelow(1000)
            return self._next_id


def _validation_errors(body: Any, *, partial: bool) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"field": "", "message": "Request Body should be a valid JSON object."}]
    errors = []

    def bad(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    if (not partial or "type" in body) and body.get("type") != 2:
        bad("type", "Invalid field.")
    if not partial or "start_time" in body:
        value = body.get("start_time")
        if not isinstance(value, str) or not START_TIME.match(value):
            bad("start_time", "Invalid field.")
        else:
            try:
                dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                bad("start_time", "Invalid field.")
    if not partial or "duration" in body:
        value = body.get("duration")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            bad("duration", "Invalid field.")
    if not partial or "topic" in body:
        value = body.get("topic")
        if not isinstance(value, str) or len(value) > 200:
            bad("topic", "Invalid field.")
    if "agenda" in body and (not isinstance(body["agenda"], str) or len(body["agenda"]) > 2000):
        bad("agenda", "Invalid field.")
    if "settings" in body and not isinstance(body["settings"], dict):
        bad("settings", "Invalid field.")
    return errors


class _Handler(BaseHTTPRequestHandler):
    zoom: FakeZoom
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # Plumbing --------------------------------------------------------------------------------
    _lost: Fault | None = None

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        lost, self._lost = self._lost, None
        if lost is not None:
            # Done, but the answer never arrives: held past the client's timeout, then dropped.
            self._call.status = -1
            self.zoom._release.wait(lost.hang_seconds)
            self.close_connection = True
            return
        self._call.status = status
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if raw:
            self.wfile.write(raw)

    def _error(self, status: int, code: int, message: str, **extra: Any) -> None:
        self._send(status, {"code": code, "message": message, **extra})

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        call = RecordedCall(
            method=self.command,
            path=unquote(parts.path),
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._call = call
        with self.zoom._lock:
            self.zoom.calls.append(call)
        if call.path == "/oauth/token":
            self._token(call)
        elif call.path.startswith("/v2/"):
            self._api(call)
        else:
            self._error(404, 404, "Not found")

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

    # Token -----------------------------------------------------------------------------------
    def _token(self, call: RecordedCall) -> None:
        zoom = self.zoom
        if call.method != "POST":
            self._error(405, 405, "Method not allowed")
            return
        with zoom._lock:
            token_fault = zoom._token_faults.popleft() if zoom._token_faults else None
        if token_fault is not None:
            self._send(token_fault, {"reason": "Internal error", "error": "server_error"})
            return
        auth = call.headers.get("authorization", "")
        try:
            user, _, password = (
                base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            )
        except ValueError:
            user, password = "", ""
        if not auth.startswith("Basic ") or (user, password) != (
            zoom.client_id,
            zoom.client_secret,
        ):
            self._send(
                400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
            )
            return
        if not call.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            self._send(400, {"reason": "Unsupported content type", "error": "invalid_request"})
            return
        form = call.form
        if form.get("grant_type") != ["account_credentials"]:
            self._send(400, {"reason": "Unsupported grant type", "error": "unsupported_grant_type"})
            return
        if form.get("account_id") != [zoom.account_id]:
            self._send(
                400,
                {"reason": "Invalid request : Account id is invalid", "error": "invalid_request"},
            )
            return
        self._send(200, zoom._issue_token())

    # API -------------------------------------------------------------------------------------
    def _api(self, call: RecordedCall) -> None:
        zoom = self.zoom
        hold = zoom._take_hold()
        if hold is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                hold.wait()
        gate = zoom._take_gate()
        if gate is not None:
            gate.arrived.set()
            gate.open.wait(gate.timeout)
        if not zoom._token_valid(call.bearer):
            self._error(401, 124, "Invalid access token.")
            return
        fault = zoom._take_fault()
        if fault is not None and fault.kind == "lost_answer":
            self._lost = fault
        elif fault is not None and self._fault(fault):
            return
        create = CREATE_PATH.match(call.path)
        if create and call.method == "POST":
            self._create(call, create.group(1))
            return
        if create and call.method == "GET":
            self._list(call, create.group(1))
            return
        meeting = MEETING_PATH.match(call.path)
        if meeting and call.method in ("GET", "PATCH", "DELETE"):
            self._meeting(call, meeting.group(1))
            return
        self._error(404, 404, "Not found")

    def _fault(self, fault: Fault) -> bool:
        if fault.kind == "401":
            self._error(401, 124, "Invalid access token.")
            return True
        if fault.kind == "500":
            self._error(500, 500, "Internal server error")
            return True
        if fault.kind == "hang":
            # Longer than the client's timeout; then the connection is closed without an answer.
            self.zoom._release.wait(fault.hang_seconds)
            self.close_connection = True
            return True
        if fault.kind in ("429", "daily_limit"):
            headers: dict[str, str] = {"X-RateLimit-Category": "Medium"}
            if fault.kind == "daily_limit":
                headers["X-RateLimit-Type"] = "Daily-limit"
            if fault.retry_after is not None:
                at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=fault.retry_after)
                if fault.form == "seconds":
                    headers["Retry-After"] = str(int(fault.retry_after))
                elif fault.form == "http-date":
                    headers["Retry-After"] = email.utils.format_datetime(at, usegmt=True)
                elif fault.form == "iso":
                    headers["Retry-After"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
                else:
                    raise ValueError(fault.form)
            message = (
                "You have exceeded the daily rate limit (100) of Meeting Create/Update API "
                "requests permitted for this particular user. You may resume these requests at "
                "GMT 00:00:00."
                if fault.kind == "daily_limit"
                else "You have reached the maximum per-second rate limit for this API. "
                "Try again later."
            )
            self._send(429, {"code": 429, "message": message}, headers)
            return True
        raise ValueError(fault.kind)

    def _user(self, user_id: str) -> str | None:
        users = self.zoom.users
        if user_id == "me":
            return next(iter(users.values()))
        if user_id in users.values():
            return user_id
        return users.get(user_id.lower())

    def _create(self, call: RecordedCall, user_id: str) -> None:
        host_id = self._user(user_id)
        if host_id is None:
            self._error(404, 1001, f"User does not exist: {user_id}.")
            return
        try:
            body = json.loads(call.body)
        except ValueError:
            body = None
        errors = _validation_errors(body, partial=False)
        if errors:
            self._error(400, 300, "Validation Failed.", errors=errors)
            return
        meeting_id = self.zoom._new_meeting_id()
        password = secrets.token_hex(4)
        meeting = {
            "id": meeting_id,
            "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
            "host_id": host_id,
            "topic": body["topic"],
            "type": 2,
            "start_time": body["start_time"],
            "duration": body["duration"],
            "timezone": body.get("timezone", "UTC"),
            "agenda": body.get("agenda", ""),
            "settings": body.get("settings", {}),
            "password": password,
            "join_url": f"https://zoom.us/j/{meeting_id}?pwd={secrets.token_urlsafe(16)}",
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        with self.zoom._lock:
            self.zoom.meetings[meeting_id] = meeting
        self._send(201, {**meeting, "start_url": self._start_url(meeting_id)})

    def _list(self, call: RecordedCall, user_id: str) -> None:
        zoom = self.zoom
        host_id = self._user(user_id)
        if host_id is None:
            self._error(404, 1001, f"User does not exist: {user_id}.")
            return
        query = parse_qs(call.query)
        kind = query.get("type", ["scheduled"])[0]
        if kind not in LIST_TYPES:
            self._error(400, 300, "Invalid field.", errors=[{"field": "type"}])
            return
        try:
            page_size = min(max(int(query.get("page_size", ["30"])[0]), 1), 300)
        except ValueError:
            self._error(400, 300, "Invalid field.", errors=[{"field": "page_size"}])
            return
        token = query.get("next_page_token", [""])[0]
        current = time.monotonic()
        with zoom._lock:
            if token:
                saved = zoom._page_tokens.pop(token, None)
                if saved is None or saved[0] < current:
                    self._error(400, 300, "Invalid next_page_token.")
                    return
                _, ids, offset = saved
            else:
                ids = sorted(
                    (m["id"] for m in zoom.meetings.values() if m["host_id"] == host_id),
                    key=lambda i: (zoom.meetings[i]["start_time"], i),
                )
                ids = [i for i in ids if self._listed(zoom.meetings[i], kind)]
                offset = 0
            window = ids[offset : offset + page_size]
            page = [zoom.meetings[i] for i in window if i in zoom.meetings]
            more = offset + page_size < len(ids)
            next_token = ""
            if more:
                next_token = secrets.token_urlsafe(24)
                zoom._page_tokens[next_token] = (
                    current + PAGE_TOKEN_SECONDS,
                    ids,
                    offset + page_size,
                )
        fields = ("uuid", "id", "host_id", "topic", "type", "start_time", "duration")
        fields += ("timezone", "created_at", "join_url")
        if zoom.list_has_agenda:
            fields += ("agenda",)
        self._send(
            200,
            {
                "page_size": page_size,
                "total_records": len(ids),
                "next_page_token": next_token,
                "meetings": [{k: m[k] for k in fields if k in m} for m in page],
            },
        )

    @staticmethod
    def _listed(meeting: dict[str, Any], kind: str) -> bool:
        start = dt.datetime.strptime(meeting["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.UTC
        )
        end = start + dt.timedelta(minutes=int(meeting["duration"]))
        current = dt.datetime.now(dt.UTC)
        if kind == "scheduled":
            return True
        if kind == "live":
            return start <= current < end
        if kind in ("upcoming", "upcoming_meetings"):
            return end > current
        return end <= current  # previous_meetings

    @staticmethod
    def _start_url(meeting_id: int) -> str:
        return f"https://zoom.us/s/{meeting_id}?zak={secrets.token_urlsafe(24)}"

    def _meeting(self, call: RecordedCall, raw_id: str) -> None:
        zoom = self.zoom
        meeting_id = int(raw_id) if raw_id.isdigit() else -1
        with zoom._lock:
            meeting = zoom.meetings.get(meeting_id)
        if meeting is None:
            self._error(404, 3001, f"Meeting does not exist: {raw_id}.")
            return
        if call.method == "GET":
            self._send(200, {**meeting, "start_url": self._start_url(meeting_id)})
            return
        if call.method == "DELETE":
            with zoom._lock:
                zoom.meetings.pop(meeting_id, None)
            self._send(204)
            return
        try:
            body = json.loads(call.body)
        except ValueError:
            body = None
        errors = _validation_errors(body, partial=True)
        if errors:
            self._error(400, 300, "Validation Failed.", errors=errors)
            return
        with zoom._lock:
            meeting.update({k: v for k, v in body.items() if k in meeting})
        self._send(204)
