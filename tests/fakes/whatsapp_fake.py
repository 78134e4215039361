"""A local fake of the parts of the WhatsApp Business Cloud API the service uses: a real HTTP
server on 127.0.0.1, and webhook deliveries signed as Meta signs them.

It checks what the Cloud API checks:

- Every call needs ``Authorization: Bearer <access_token>``; else ``401`` with Graph error
  ``190`` (``OAuthException``). Errors have Graph's shape: ``{"error": {"message", "type",
  "code", "error_data": {"messaging_product", "details"}, "fbtrace_id"}}``.
- ``POST /{version}/{phone_number_id}/messages``: an unknown phone number id is ``400`` code
  ``100`` (subcode 33); ``messaging_product`` must be ``whatsapp`` and ``to`` given (``400``
  code ``100``). ``type: text`` needs ``text.body`` (at most 4096 characters). ``type:
  template`` needs an approved template by name *and* language (``404`` code ``132001``) and
  exactly its number of body parameters (``400`` code ``132000``). Accepted messages answer
  ``200 {"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": wamid}]}``
  (templates add ``"message_status": "accepted"``); what happens next comes as status webhooks,
  as it does from Meta: ``sent`` then ``delivered`` (``read`` with ``read(wamid)``), or
  ``failed`` with ``131047`` (re-engagement: free text while the customer's 24-hour window is
  closed; the window opens when the customer writes, ``customer_writes``) or ``131026``
  (undeliverable: ``unreachable`` numbers).
- ``GET /{version}/{media_id}``: ``{"messaging_product", "url", "mime_type", "sha256",
  "file_size", "id"}`` (unknown id: ``400`` code ``100``); the URL is good for 5 minutes and
  needs the same bearer token.

Faults for the next N API calls: ``fail_next(n, "429")`` (``429`` with code ``130429``, "Rate
limit hit": throughput), ``"pair"`` (``400`` code ``131056``: too many messages to one number),
``"500"`` (code 1), ``"503"`` (code 2, "Service temporarily unavailable").

Webhooks: ``customer_writes`` and every status queue a delivery: the exact bytes Meta would send
(JSON with non-ASCII escaped as ``\\uXXXX`` and ``/`` as ``\\/``) and
``X-Hub-Signature-256: sha256=hex(HMAC-SHA256(app_secret, body))``. ``deliver(post)`` hands
each pending one to ``post(body, headers)`` (a test client, or an HTTP POST to the service) and
keeps those not answered 200, as Meta retries them. Every API request is recorded in ``calls``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from app.core.time import now as service_now

WINDOW = dt.timedelta(hours=24)
MEDIA_URL_SECONDS = 300
DEFAULT_TEMPLATES: dict[tuple[str, str], int] = {
    (name, lang): params
    for lang in ("en", "ru", "es", "ar")
    for name, params in (
        ("intake_acknowledgement", 1),
        ("intake_acknowledgement_neutral", 1),
        ("intake_tried_to_reach", 1),
        ("intake_tried_to_reach_neutral", 1),
        ("consultation_reminder", 2),
        ("consultation_reminder_neutral", 2),
    )
}
REENGAGEMENT_DETAILS = (
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number."
)


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


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def sign(app_secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` as Meta sends it."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def meta_json(value: Any) -> bytes:
    """JSON as Meta writes webhook bodies: compact, non-ASCII and ``/`` escaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


@dataclass
class FakeWhatsApp:
    access_token: str = "EAAtest_access_token"
    phone_number_id: str = "106540352242922"
    display_phone_number: str = "15550783881"
    waba_id: str = "102290129340398"
    app_secret: str = "app_secret_test"
    verify_token: str = "verify_token_test"
    version: str = "v21.0"
    now: Callable[[], dt.datetime] = service_now
    templates: dict[tuple[str, str], int] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))

    def __post_init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.sent: list[dict[str, Any]] = []  # accepted message bodies, with "wamid"
        self.media: dict[str, tuple[bytes, str]] = {}
        self.unreachable: set[str] = set()
        self.pending: list[Delivery] = []
        self._windows: dict[str, dt.datetime] = {}
        self._media_urls: dict[str, tuple[str, float]] = {}
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeWhatsApp:
        fake = self

        class Handler(_Handler):
            wa = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Controls --------------------------------------------------------------------------------
    def fail_next(self, n: int, kind: str) -> None:
        if kind not in ("429", "pair", "500", "503"):
            raise ValueError(kind)
        with self._lock:
            self._faults.extend([kind] * n)

    def add_media(self, data: bytes, mime_type: str) -> str:
        media_id = str(10**15 + secrets.randbelow(10**15))
        with self._lock:
            self.media[media_id] = (data, mime_type)
        return media_id

    def customer_writes(
        self,
        wa_id: str,
        text: str | None = None,
        *,
        name: str = "",
        media: tuple[str, str] | None = None,  # (kind: image|document|audio|video, media id)
        caption: str | None = None,
        filename: str | None = None,
        at: dt.datetime | None = None,
        wamid: str | None = None,
    ) -> Delivery:
        """The customer sends a message: their 24-hour window opens, a delivery is queued."""
        when = at or self.now()
        message: dict[str, Any] = {
            "from": wa_id,
            "id": wamid or new_wamid(),
            "timestamp": str(int(when.timestamp())),
        }
        if media is None:
            message.update(type="text", text={"body": text or ""})
        else:
            kind, media_id = media
            data, mime = self.media[media_id]
            part: dict[str, Any] = {
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "id": media_id,
            }
            if caption is not None:
                part["caption"] = caption
            if kind == "document":
                part["filename"] = filename or "file"
            if kind == "audio":
                part["voice"] = True
            message.update(type=kind, **{kind: part})
        with self._lock:
            if when > self._windows.get(wa_id, when - WINDOW):
                self._windows[wa_id] = when
        value = {
            "contacts": [{"profile": {"name": name or wa_id}, "wa_id": wa_id}],
            "messages": [message],
        }
        return self.queue(value)

    def status(
        self, wamid: str, status: str, *, errors: list[dict[str, Any]] | None = None
    ) -> Delivery:
        with self._lock:
            sent = next((m for m in self.sent if m["wamid"] == wamid), None)
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(self.now().timestamp())),
            "recipient_id": sent["to"] if sent else "",
        }
        if sent and sent.get("biz_opaque_callback_data"):
            entry["biz_opaque_callback_data"] = sent["biz_opaque_callback_data"]
        if errors:
            entry["errors"] = errors
        return self.queue({"statuses": [entry]})

    def read(self, wamid: str) -> Delivery:
        return self.status(wamid, "read")

    def queue(self, value: dict[str, Any]) -> Delivery:
        body = meta_json(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": self.waba_id,
                        "changes": [
                            {
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": self.display_phone_number,
                                        "phone_number_id": self.phone_number_id,
                                    },
                                    **value,
                                },
                                "field": "messages",
                            }
                        ],
                    }
                ],
            }
        )
        delivery = Delivery(
            body,
            {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(self.app_secret, body),
                "User-Agent": "facebookexternalua",
            },
        )
        with self._lock:
            self.pending.append(delivery)
        return delivery

    def deliver(self, post: Callable[[bytes, dict[str, str]], int]) -> list[int]:
        """Post every pending delivery; those not answered 200 stay pending (Meta retries)."""
        with self._lock:
            batch, self.pending = self.pending, []
        codes, again = [], []
        for d in batch:
            code = post(d.body, d.headers)
            codes.append(code)
            if code != 200:
                again.append(d)
        with self._lock:
            self.pending[:0] = again
        return codes

    def window_open(self, wa_id: str) -> bool:
        with self._lock:
            last = self._windows.get(wa_id)
        return last is not None and self.now() < last + WINDOW

    # Views ---------------------------------------------------------------------------------
    def message_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.path.endswith("/messages")]

    def _take_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None


def new_wamid() -> str:
    return "wamid." + secrets.token_urlsafe(36)


def _error(code: int, message: str, details: str | None = None, **extra: Any) -> dict[str, Any]:
    err: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "A" + secrets.token_urlsafe(16),
        **extra,
    }
    if details is not None:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": err}


class _Handler(BaseHTTPRequestHandler):
    wa: FakeWhatsApp
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        self._call.status = status
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        call = RecordedCall(
            self.command,
            unquote(parts.path),
            parts.query,
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self._call = call
        wa = self.wa
        with wa._lock:
            wa.calls.append(call)
        if call.headers.get("authorization") != f"Bearer {wa.access_token}":
            self._send(
                401,
                _error(190, "Invalid OAuth access token - Cannot parse access token"),
            )
            return
        if call.path == "/media-download":
            self._download(call)
            return
        fault = wa._take_fault()
        if fault is not None:
            self._fault(fault)
            return
        segments = call.path.strip("/").split("/")
        if len(segments) == 3 and segments[2] == "messages" and call.method == "POST":
            self._message(call, segments[1])
        elif len(segments) == 2 and call.method == "GET":
            self._media(segments[1])
        else:
            self._send(400, _error(100, "Unsupported request - method type: " + call.method))

    do_GET = do_POST = do_DELETE = _handle

    def _fault(self, kind: str) -> None:
        if kind == "429":
            self._send(
                429,
                _error(
                    130429,
                    "(#130429) Rate limit hit",
                    "Cloud API message throughput has been reached.",
                ),
            )
        elif kind == "pair":
            self._send(
                400,
                _error(
                    131056,
                    "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                    "Too many messages sent from the sender phone number to the same recipient "
                    "phone number in a short period of time.",
                ),
            )
        elif kind == "500":
            self._send(500, _error(1, "An unknown error has occurred.", is_transient=True))
        else:
            self._send(503, _error(2, "Service temporarily unavailable", is_transient=True))

    def _message(self, call: RecordedCall, phone_number_id: str) -> None:
        wa = self.wa
        if phone_number_id != wa.phone_number_id:
            self._send(
                400,
                _error(
                    100,
                    f"Unsupported post request. Object with ID '{phone_number_id}' does not "
                    "exist, cannot be loaded due to missing permissions, or does not support "
                    "this operation.",
                    error_subcode=33,
                ),
            )
            return
        try:
            body = json.loads(call.body)
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            self._send(400, _error(100, "(#100) The parameter messaging_product is required."))
            return
        to = body.get("to")
        if not isinstance(to, str) or not to.lstrip("+").isdigit():
            self._send(400, _error(100, "(#100) The parameter to is required."))
            return
        to = to.lstrip("+")
        kind = body.get("type", "text")
        failure: tuple[int, str, str] | None = None
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text or len(text) > 4096:
                self._send(400, _error(100, "(#100) Param text['body'] is required."))
                return
            if not wa.window_open(to):
                failure = (131047, "Re-engagement message", REENGAGEMENT_DETAILS)
        elif kind == "template":
            template = body.get("template") or {}
            name = str(template.get("name"))
            language = str((template.get("language") or {}).get("code"))
            expected = wa.templates.get((name, language))
            if expected is None:
                self._send(
                    404,
                    _error(
                        132001,
                        "(#132001) Template name does not exist in the translation",
                        f"template name ({name}) does not exist in {language}",
                    ),
                )
                return
            given = sum(
                len(c.get("parameters") or [])
                for c in template.get("components") or []
                if c.get("type") == "body"
            )
            if given != expected:
                self._send(
                    400,
                    _error(
                        132000,
                        "(#132000) Number of parameters does not match the expected number of "
                        "params",
                        f"body: number of localizable_params ({given}) does not match the "
                        f"expected number of params ({expected})",
                    ),
                )
                return
        else:
            self._send(400, _error(100, f"(#100) Unsupported message type {kind}"))
            return
        if to in wa.unreachable:
            failure = (131026, "Message undeliverable", "Message Undeliverable.")
        wamid = new_wamid()
        with wa._lock:
            wa.sent.append({**body, "to": to, "wamid": wamid})
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": to}],
            "messages": [{"id": wamid}],
        }
        if kind == "template":
            answer["messages"][0]["message_status"] = "accepted"
        self._send(200, answer)
        # What happens next reaches the business by webhook, as from Meta.
        if failure is not None:
            code, title, details = failure
            wa.status(
                wamid,
                "failed",
                errors=[
                    {
                        "code": code,
                        "title": title,
                        "message": title,
                        "error_data": {"details": details},
                    }
                ],
            )
        else:
            wa.status(wamid, "sent")
            wa.status(wamid, "delivered")

    def _media(self, media_id: str) -> None:
        wa = self.wa
        with wa._lock:
            found = wa.media.get(media_id)
        if found is None:
            self._send(
                400,
                _error(
                    100,
                    f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                    "cannot be loaded due to missing permissions, or does not support this "
                    "operation.",
                    error_subcode=33,
                ),
            )
            return
        data, mime = found
        token = secrets.token_urlsafe(16)
        with wa._lock:
            wa._media_urls[token] = (media_id, time.monotonic() + MEDIA_URL_SECONDS)
        self._send(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{wa.base_url}/media-download?mid={media_id}&hash={token}",
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": str(len(data)),
                "id": media_id,
            },
        )

    def _download(self, call: RecordedCall) -> None:
        wa = self.wa
        token = parse_qs(call.query).get("hash", [""])[0]
        with wa._lock:
            media_id, until = wa._media_urls.get(token, ("", 0.0))
            found = wa.media.get(media_id)
        if found is None or until < time.monotonic():
            self._send(404, b"URL signature expired", "text/plain")
            return
        data, mime = found
        self._send(200, data, mime)
