"""Calendar servers for the tests: a local HTTP server serving ICS files (stdlib http.server in
a thread, with ETag and Last-Modified, answering 304 to a matching conditional GET), and a real
CalDAV server (Radicale, a separate process) with one user."""

from __future__ import annotations

import email.utils
import hashlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class IcsFiles:
    """What the server serves: path -> ICS bytes; ``status`` forces an answer (e.g. 500)."""

    files: dict[str, bytes] = field(default_factory=dict)
    modified: dict[str, float] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    def put(self, path: str, body: bytes, *, at: float | None = None) -> str:
        self.files[path] = body
        self.modified[path] = at if at is not None else time.time()
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @staticmethod
    def etag(body: bytes) -> str:
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def _handler(files: IcsFiles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            files.requests.append(
                {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
            )
            forced = files.status.get(self.path)
            if forced:
                self.send_response(forced)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = files.files.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = files.etag(body)
            modified = email.utils.formatdate(files.modified[self.path], usegmt=True)
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def ics_server() -> Iterator[IcsFiles]:
    files = IcsFiles()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    files.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield files
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class CalDav:
    url: str
    username: str
    password: str


@contextmanager
def radicale(folder: Path) -> Iterator[CalDav]:
    """Radicale on a free loopback port with one htpasswd user; waits until it answers."""
    port = _free_port()
    users = folder / "users"
    users.write_text("expert:app-password-123\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--storage-filesystem-folder",
            str(folder / "collections"),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(users),
            "--auth-htpasswd-encryption",
            "plain",
            "--rights-type",
            "owner_only",
            "--logging-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Radicale did not start") from None
                time.sleep(0.05)  # polling a port with a deadline, not waiting for a guess
        yield CalDav(f"http://127.0.0.1:{port}/expert/", "expert", "app-password-123")
    finally:
        process.terminate()
        process.wait(timeout=10)
