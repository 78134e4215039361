"""Start and stop real processes for end-to-end tests: the whole service the README way, single
``api``/``worker``/``beat`` processes, and a private ``redis-server``.

Every helper returns an object that owns its process; call ``stop()`` in a ``finally`` (or use it
as a context manager) so nothing outlives the test even when it fails::

    with start_service(tmp_path) as svc:           # embedded default: SQLite, .eml files
        resp = httpx.get(f"{svc.url}/readyz")
        mail = svc.mail_dir                          # var/mail/ under the service's directory
    # here every child (api, worker, beat) has stopped; ``svc.exit_code`` is set

    redis = start_redis(tmp_path)                    # a broker the test may stop and restart
    try:
        env = {"INTAKE_DATABASE_URL": url, "INTAKE_BROKER_URL": redis.url}
        with start_service(tmp_path, env=env) as svc:
            redis.stop()                             # broker down: submissions must still work
            ...
            redis.start()                            # same port again: work flows
    finally:
        redis.stop()

Processes are started in their own session (process group), the same way a terminal runs a
foreground job, so ``stop()`` can send SIGINT like Ctrl-C and then make sure that no process of
the group is left. Output (stdout and stderr) goes to a log file: ``read_log()`` returns it and
failures include its tail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from tests.conftest import child_env, create_migrated_sqlite

ROOT = Path(__file__).resolve().parents[1]
#: The console script exactly as the README's first command installs it.
CLI = ROOT / ".venv" / "bin" / "asylum-intake"

#: How long ``stop()`` lets the children of a stopped process finish dying before it calls them
#: leftovers (a child that ignores the signal is still alive after this, and is reported).
LEFTOVER_GRACE_SECONDS = 3.0

#: Variables that point the service away from the embedded default (SQLite, SQLite broker).
EXTERNAL_VARS = ("INTAKE_DATABASE_URL", "INTAKE_BROKER_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port to point a dependency at when the test wants it unreachable."""
    return free_port()


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str = ""
) -> None:
    """Poll ``predicate`` until it is true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if predicate():
        return
    raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what or predicate}")


def service_env(
    extra: Mapping[str, str] | None = None, *, embedded: bool = True, bare: bool = False
) -> dict[str, str]:
    """``child_env()`` for a service process.

    ``embedded=True`` drops INTAKE_DATABASE_URL/INTAKE_BROKER_URL so the child uses the embedded
    default under its working directory's ``var/``; pass them in ``extra`` to use others.
    ``bare=True`` passes no INTAKE_* variable at all (not even INTAKE_ENV=test), exactly like
    someone typing the README's command; ``extra`` still applies.
    """
    if bare:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        env.update(extra or {})
        return env
    env = child_env(**(extra or {}))
    if embedded:
        for name in EXTERNAL_VARS:
            if name not in (extra or {}):
                env.pop(name, None)
    return env


def _descendants(pid: int) -> set[int]:
    """Every living descendant of ``pid``, from /proc (no psutil)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _group_members(pgid: int) -> set[int]:
    """Living (non-zombie) processes of process group ``pgid``."""
    members: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.add(int(entry.name))
    return members


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2 :].split()[0] != "Z"


@dataclass
class ManagedProcess:
    """One process we started (in its own process group) and must stop."""

    name: str
    args: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    #: PIDs seen below the process while it ran (``children()``), checked again after stop.
    seen_children: set[int] = field(default_factory=set)
    _leftovers: set[int] = field(default_factory=set)
    _log: IO[bytes] | None = None

    def start(self) -> Self:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> set[int]:
        """Living descendants now (and remembered, so ``stop()`` can check they are gone)."""
        found = _descendants(self.pid) if self.running() else set()
        self.seen_children |= found
        return found

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.read_log().splitlines()[-lines:])

    def stop(self, sig: signal.Signals = signal.SIGINT, *, timeout: float = 30.0) -> int | None:
        """Send ``sig`` to the process (the whole group for SIGINT, as Ctrl-C does), wait, then
        kill whatever is left of the group. Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.children()
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGINT:
                    os.killpg(self.pid, sig)
                else:
                    self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.exit_code = self.proc.returncode

        # Anything left in the group (a child that ignored the signal) is killed, and reported
        # by ``leftovers()`` so a test can fail on it. A child already dying (e.g. one that got
        # SIGKILL a moment ago) gets a short grace first: the kernel needs a moment to take it.
        def remaining() -> set[int]:
            return {p for p in self.seen_children | _group_members(self.pid) if _alive(p)}

        deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
        while remaining() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._leftovers = remaining()
        if self._leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            for p in self._leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.exit_code

    def leftovers(self) -> set[int]:
        """PIDs that were still alive after the main process exited (killed by ``stop()``)."""
        return set(self._leftovers)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Service(ManagedProcess):
    """``asylum-intake run`` (or a single ``api``) with an HTTP port."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def var_dir(self) -> Path:
        return Path(self.env.get("INTAKE_DATA_DIR") or self.cwd / "var")

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    def wait_ready(self, timeout: float = 45.0) -> httpx.Response:
        """Wait until GET /readyz answers 200; fails with the log tail if the process dies."""
        last: httpx.Response | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode if self.proc else None} "
                    f"before it was ready:\n{self.log_tail()}"
                )
            try:
                last = httpx.get(f"{self.url}/readyz", timeout=5)
                if last.status_code == 200:
                    return last
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        detail = last.text if last is not None else "no answer"
        raise AssertionError(
            f"{self.name} not ready after {timeout:.0f}s ({detail}):\n{self.log_tail()}"
        )


def start_service(
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    concurrency: int = 2,
    wait: bool = True,
    timeout: float = 60.0,
    bare: bool = False,
) -> Service:
    """Start the whole service exactly as the README does (``.venv/bin/asylum-intake run``) in
    ``workdir``, so ``var/`` lands there. ``env`` adds to (or, for INTAKE_DATABASE_URL and
    INTAKE_BROKER_URL, replaces) the embedded default. ``bare=True``: no INTAKE_* variable
    from the test run at all (see ``service_env``). Waits for /readyz unless ``wait=False``.
    """
    extra = dict(env or {})
    port = port or free_port()
    svc = Service(
        name="asylum-intake run",
        args=[str(CLI), "run", "--port", str(port), "--concurrency", str(concurrency)],
        cwd=workdir,
        env=service_env(extra, embedded=True, bare=bare),
        log_path=workdir / "service.log",
        port=port,
    )
    svc.start()
    if wait:
        try:
            svc.wait_ready(timeout)
            svc.children()
        except BaseException:
            svc.stop()
            raise
    return svc


def start_api(
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
    timeout: float = 45.0,
    name: str = "api",
) -> Service:
    """One ``asylum-intake api`` process (no migration: run ``migrate()`` first)."""
    port = port or free_port()
    svc = Service(
        name=name,
        args=[str(CLI), "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=service_env(env, embedded=True),
        log_path=workdir / f"{name}.log",
        port=port,
    )
    svc.start()
    if wait:
        try:
            svc.wait_ready(timeout)
        except BaseException:
            svc.stop()
            raise
    return svc


def start_worker(
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    concurrency: int = 1,
    name: str = "worker",
    wait: bool = True,
    timeout: float = 45.0,
) -> ManagedProcess:
    """One ``asylum-intake worker``; with ``wait`` returns once Celery logs "ready"."""
    proc = ManagedProcess(
        name=name,
        args=[str(CLI), "worker", "--concurrency", str(concurrency)],
        cwd=workdir,
        env=service_env(env, embedded=True),
        log_path=workdir / f"{name}.log",
    ).start()
    if wait:
        try:
            wait_worker_ready(proc, timeout)
        except BaseException:
            proc.stop()
            raise
    return proc


def wait_worker_ready(proc: ManagedProcess, timeout: float = 45.0) -> None:
    """Wait until a worker started with ``wait=False`` logs that it is ready."""
    wait_for(
        lambda: " ready." in proc.read_log() or not proc.running(),
        timeout=timeout,
        what=f"{proc.name} ready",
    )
    if not proc.running():
        raise AssertionError(f"{proc.name} exited early:\n{proc.log_tail()}")
    proc.children()  # remember its pool processes


def start_beat(
    workdir: Path, *, env: Mapping[str, str] | None = None, name: str = "beat"
) -> ManagedProcess:
    """One ``asylum-intake beat`` (sends ``outbox.pump`` every INTAKE_OUTBOX_POLL_SECONDS)."""
    return ManagedProcess(
        name=name,
        args=[str(CLI), "beat"],
        cwd=workdir,
        env=service_env(env, embedded=True),
        log_path=workdir / f"{name}.log",
    ).start()


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    embedded: bool = True,
    bare: bool = False,
    input: str | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run one ``asylum-intake`` sub-command to completion (migrate, create-admin, check...)."""
    return subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env=service_env(env, embedded=embedded, bare=bare),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def migrate(cwd: Path, env: Mapping[str, str] | None = None) -> None:
    result = run_cli(["migrate"], cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def migrated_embedded(cwd: Path) -> None:
    """The embedded default's database under ``cwd/var/`` at the newest schema, as ``migrate()``
    leaves it, for a test about something else (a copy: no ``asylum-intake migrate`` process,
    nearly a second of CPU; that command is tested in tests/ops/test_cli_ops.py)."""
    create_migrated_sqlite(cwd / "var" / "intake.sqlite3")


def create_admin(
    cwd: Path,
    *,
    email: str,
    password: str,
    name: str = "Admin",
    env: Mapping[str, str] | None = None,
    bare: bool = False,
) -> None:
    """``asylum-intake create-admin --password-stdin`` in ``cwd`` (same ``var/`` as a service
    started there)."""
    result = run_cli(
        ["create-admin", "--email", email, "--name", name, "--password-stdin"],
        cwd=cwd,
        env=env,
        bare=bare,
        input=password + "\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def sign_in(base_url: str, email: str, password: str) -> dict[str, str]:
    """POST /api/v1/auth/login; returns the Authorization header."""
    resp = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['user_token']}"}


@dataclass
class RedisServer:
    """A private ``redis-server`` on a spare loopback port, no persistence. ``stop()`` and
    ``start()`` again keep the same port, so a test can take the broker away and bring it back.
    """

    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"redis-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self.ping, timeout=timeout, interval=0.05, what=f"redis on port {self.port}")
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        wait_for(lambda: not self.ping(), timeout=5, what="redis to stop")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_redis(workdir: Path, port: int | None = None) -> RedisServer:
    return RedisServer(workdir=workdir, port=port or 0).start()


@contextlib.contextmanager
def stopping(*procs: ManagedProcess | RedisServer) -> Iterator[None]:
    """Stop every given process on the way out, in reverse order, even if one stop fails."""
    try:
        yield
    finally:
        errors: list[BaseException] = []
        for p in reversed(procs):
            try:
                p.stop()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]
