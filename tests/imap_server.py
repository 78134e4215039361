"""A real IMAP server for the tests: Debian's Dovecot (``dovecot-imapd``, installed by
``.ci/run``), started in the foreground with its own configuration in a temporary folder,
plain-text login on 127.0.0.1 and a free port, one user, Maildir storage."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "intake"
PASSWORD = "imap-test-password"


@dataclass
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    folder: Path

    def client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4(self.host, self.port, timeout=10)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        c = self.client()
        try:
            typ, data = c.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            c.logout()

    def clear(self) -> None:
        """Delete every message of every folder (a fresh mailbox for the next test)."""
        c = self.client()
        try:
            typ, listing = c.list()
            assert typ == "OK"
            for line in listing:
                name = line.decode().rsplit(' "/" ', 1)[-1] if isinstance(line, bytes) else ""
                if not name:
                    continue
                typ, count = c.select(name)
                if typ != "OK":
                    continue
                if count and count[0] not in (b"0", None):
                    c.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                    c.expunge()
                c.close()
        finally:
            c.logout()

    def search(self, folder: str, *criteria: str) -> list[bytes]:
        c = self.client()
        try:
            typ, _ = c.select(folder)
            assert typ == "OK"
            typ, data = c.uid("SEARCH", *criteria)
            assert typ == "OK"
            return list(data[0].split()) if data and data[0] else []
        finally:
            c.logout()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, port: int) -> str:
    if os.getuid() == 0:  # Dovecot refuses root as a mail or login user
        mail_user = pwd.getpwnam("dovecot")
        login_user, internal = "dovenull", "dovecot"
    else:
        mail_user = pwd.getpwuid(os.getuid())
        login_user = internal = mail_user.pw_name
    uid, gid = mail_user.pw_uid, mail_user.pw_gid
    for sub in ("mail", "home"):
        (tmp / sub).mkdir()
        os.chown(tmp / sub, uid, gid)
    (tmp / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    group = grp.getgrgid(gid).gr_name
    return f"""
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp}/mail/%u
first_valid_uid = {uid}
last_valid_uid = {uid}
default_internal_user = {internal}
default_internal_group = {group if os.getuid() != 0 else "dovecot"}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


@contextmanager
def dovecot() -> Iterator[ImapServer]:
    if not os.path.exists(DOVECOT):
        raise RuntimeError(
            "Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does it)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="imap-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - the mail user (not us) must reach its folders
    port = _free_port()
    (tmp / "dovecot.conf").write_text(_config(tmp, port))
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(tmp / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = ImapServer("127.0.0.1", port, USER, PASSWORD, tmp)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                server.client().logout()
                break
            except (OSError, imaplib.IMAP4.error):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (tmp / "dovecot.log").read_text() if (tmp / "dovecot.log").exists() else ""
                    )
                    raise RuntimeError(f"dovecot did not start: {log[-2000:]}") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
