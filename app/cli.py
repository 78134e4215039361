"""``asylum-intake``: run, migrate, worker, beat, create-admin, check, audit verify, backup,
restore, rotate-key.

``run`` starts the whole service (API + Celery worker + beat) as child processes and stops them
together on Ctrl-C; with no configuration it uses the embedded defaults under ``./var``.
"""

from __future__ import annotations

import argparse
import atexit
import getpass
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from app.core.settings import Settings, SettingsError, get_settings
from app.core.startup import quick_imports

EXIT_CONFIG = 2


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check(_args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    from app.health.service import check_report

    # The same report as the admins' Operations page.
    report = check_report(settings)
    print("Configuration:")
    for key, value in report.settings.items():
        print(f"  {key} = {value}")
    print("Dependencies:")
    for dep in report.dependencies:
        print(f"  {dep.name}: {'ok' if dep.error is None else 'UNREACHABLE - ' + dep.error}")
    return 0 if report.ok else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    with quick_imports():
        from app.core import migrate

    if args.check:
        return _migrate_check(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_database_url)
    print("Database is at the latest schema.")
    return 0


def _migrate_check(settings: Settings) -> int:
    """Exit 0 when the database is at this version's newest revision, 1 when migrations are
    pending (or the database is ahead of this version), 2 when it cannot be reached."""
    from app.core.database import build_engine
    from app.ops.migrations import state

    engine = build_engine(settings.resolved_database_url, for_tests=True)
    try:
        current = state(engine)
    except Exception as exc:
        print(f"Cannot read the database's schema revision: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        engine.dispose()
    if current.unknown:
        print(
            f"The database is at revision {current.current}, which this version does not know "
            f"(a newer release migrated it); this version's newest is {current.head}."
        )
        return 1
    if current.pending:
        print(
            f"{len(current.pending)} migration(s) pending: the database is at "
            f"{current.current or '(empty)'}, this version's newest is {current.head}."
        )
        for revision in current.pending:
            print(f"  {revision}")
        print("Run `asylum-intake migrate`.")
        return 1
    print(f"No migration pending: the database is at {current.head}.")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (12+ characters): ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("The two passwords differ.")
    return first


def cmd_create_admin(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    with quick_imports():
        from pydantic import ValidationError

        from app.accounts import service
        from app.accounts.errors import EmailTaken
        from app.accounts.schemas import InviteIn, SetPasswordIn
        from app.core.database import session_scope
        from app.models import Role

    del settings
    password = _read_password(args)
    try:
        body = InviteIn(email=args.email, display_name=args.name, role=Role.admin)
        SetPasswordIn(token="x" * 10, password=password)  # same password rules as the API
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            print(f"{field}: {err['msg']}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        with session_scope() as session:
            user = service.create_user(
                session,
                email=body.email,
                display_name=body.display_name,
                role=Role.admin,
                password=password,
            )
            user_id = user.id
    except EmailTaken:
        print(f"A user with e-mail {body.email} exists already.", file=sys.stderr)
        return 1
    print(f"Admin created: {body.email} ({user_id})")
    print(f"Sign in at {sign_in_url(get_settings())}")
    if get_settings().public_url_is_derived:
        print(
            "  (that is where `asylum-intake run` serves by default; with --port or "
            "INTAKE_API_HOST/INTAKE_API_PORT the address follows them, and INTAKE_PUBLIC_URL "
            "overrides it)"
        )
    return 0


def sign_in_url(settings: Settings) -> str:
    from app.web.paths import SIGN_IN_PATH

    return f"{settings.public_url}{SIGN_IN_PATH}"


def _warn_public_url(settings: Settings) -> None:
    """A log line at start-up when e-mailed links are guessed from the served address."""
    message = settings.public_url_warning()
    if message:
        import structlog

        structlog.get_logger("app.cli").warning("public_url_not_set", detail=message)


def _celery(argv: Sequence[str], *, runs_tasks: bool, renders_links: bool = False) -> int:
    settings = _settings_or_exit()
    with quick_imports():
        from app.core.logging import configure_logging
        from workers.celery_app import app, without_task_modules

        if runs_tasks:
            app.loader.import_default_modules()  # the task modules, before the pool forks
        else:
            without_task_modules(app)

    # Before Celery starts, so its early warnings are log lines too. With JSON logs, no
    # start-up banner: every line on the output stays one JSON object.
    configure_logging(settings.resolved_log_format, settings.log_level)
    if renders_links:
        # A worker started on its own cannot know the API's --port: it only has the settings.
        _warn_public_url(settings)
    quiet = ["--quiet"] if settings.resolved_log_format == "json" else []
    app.start(argv=[*quiet, *argv])
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    return _celery(
        [
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(args.concurrency),
            "-n",
            f"worker-{os.getpid()}@%h",
        ],
        runs_tasks=True,
        renders_links=True,
    )


def cmd_beat(_args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return _celery(["beat", "--loglevel", "INFO"], runs_tasks=False)


def _serve_on(host: str | None, port: int | None) -> None:
    """Make --host/--port the settings' api_host/api_port, in this process and its children,
    so that links derived from them (no INTAKE_PUBLIC_URL) name the address really served."""
    if host:
        os.environ["INTAKE_API_HOST"] = host
    if port:
        os.environ["INTAKE_API_PORT"] = str(port)
    get_settings.cache_clear()


def cmd_api(args: argparse.Namespace) -> int:
    _serve_on(args.host, args.port)
    settings = _settings_or_exit()
    with quick_imports():
        import uvicorn

        importlib.import_module("app.main")  # what uvicorn loads by name below
        from app.core.logging import configure_logging

    configure_logging(settings.resolved_log_format, settings.log_level)
    _warn_public_url(settings)
    # Once per `api` command (not per uvicorn worker): e-mails the admins when no worker or no
    # beat reports, from here because the outbox needs the very worker that may be down.
    from app.ops import watchdog

    watchdog.start()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=args.workers,
        # uvicorn would otherwise trust X-Forwarded-* from 127.0.0.1 whatever the setting says.
        proxy_headers=settings.trust_proxy_headers,
        log_config=None,
        server_header=False,
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _serve_on(None, args.port)
    settings = _settings_or_exit()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with quick_imports():
        from app.core import crypto, migrate
        from app.health.service import reachability

    # Start-up may wait longer than the check does (a database still coming up).
    problems = [d.error for d in reachability(settings, timeout=10.0) if d.error]
    if problems:
        print("Cannot start:\n  " + "\n  ".join(problems), file=sys.stderr)
        return EXIT_CONFIG
    crypto.load_master_key(settings)  # generate it once, before three processes race for it
    migrate.upgrade(settings.resolved_database_url)
    me = [sys.executable, "-m", "app.cli"]
    port = ["--port", str(args.port)] if args.port else []
    # The worker renders the e-mailed links: it gets the base the API is served on, explicitly,
    # so every child agrees on it (and none warns: this process does, once, below).
    env = {**os.environ, "INTAKE_PUBLIC_URL": settings.public_url}
    children = {
        "api": subprocess.Popen([*me, "api", *port], env=env),
        "worker": subprocess.Popen(
            [*me, "worker", "--concurrency", str(args.concurrency)], env=env
        ),
        "beat": subprocess.Popen([*me, "beat"], env=env),
    }
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(
        f"asylum-intake running: API on http://{settings.api_host}:{settings.api_port}"
        " (Ctrl-C stops everything)",
        flush=True,
    )
    print(
        f"Links in e-mails start with {settings.public_url}; staff sign in at "
        f"{sign_in_url(settings)}",
        flush=True,
    )
    if settings.public_url_is_derived and settings.env == "production":
        print(f"WARNING: {settings.public_url_warning()}", file=sys.stderr, flush=True)
    exit_code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the rest", file=sys.stderr)
                exit_code, stopping = 1, True
                break
        time.sleep(0.3)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("asylum-intake stopped.", flush=True)
    return exit_code


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """Re-wrap every key under INTAKE_MASTER_KEY (old keys from INTAKE_OLD_MASTER_KEYS), a batch
    per transaction, with progress; run it again after an interruption to finish."""
    _settings_or_exit()
    from app.core.database import get_engine
    from app.ops import rotation

    def show(p: rotation.Progress) -> None:
        print(f"  {p.what}: {p.done} of {p.total} re-wrapped", file=sys.stderr, flush=True)

    try:
        report = rotation.rotate(get_engine(), batch=args.batch, on_batch=show)
    except rotation.RotationError as exc:
        print(f"Cannot rotate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(
            "Interrupted: the batches done so far are kept; run rotate-key again to finish.",
            file=sys.stderr,
        )
        return 130
    counts = ", ".join(f"{k}={v}" for k, v in report.rewrapped.items())
    print(
        f"Everything is now wrapped by master key '{report.key_id}' "
        f"(re-wrapped {report.total} in {report.batches} batches: {counts})."
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """One encrypted archive of the database, stored documents and mail copies."""
    settings = _settings_or_exit()
    from app.core.time import now
    from app.ops import backup

    target = Path(args.output or f"asylum-intake-{now():%Y%m%dT%H%M%SZ}.backup")
    partial = target.with_name(target.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            report = backup.backup(settings, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, target)
    except backup.BackupError as exc:
        partial.unlink(missing_ok=True)
        print(f"Backup failed: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    rows = sum(report.rows.values())
    print(
        f"Backup written to {target} ({target.stat().st_size} bytes): {rows} rows in "
        f"{len(report.rows)} tables, {report.files['documents']} document file(s), "
        f"{report.files['mail']} mail copies; schema {report.revision}."
    )
    used = sorted({k for per in report.key_ids.values() for k in per} - {report.master_key_id})
    also = f"; its data keys also need {', '.join(repr(k) for k in used)}" if used else ""
    print(
        f"It opens only with master key '{report.master_key_id}'{also}: keep the key apart "
        "from the backups, never beside them."
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore an archive into an empty database (refusing one with data unless --force)."""
    settings = _settings_or_exit()
    from app.ops import archive, backup

    url = args.database_url or settings.resolved_database_url
    try:
        with open(args.archive, "rb") as fh:
            report = backup.restore(
                settings, fh, url=url, force=args.force, progress=lambda m: print(f"  {m}")
            )
    except FileNotFoundError:
        print(f"No such file: {args.archive}", file=sys.stderr)
        return 1
    except (archive.ArchiveError, backup.BackupError) as exc:
        print(f"Restore refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"Restored {sum(report.rows.values())} rows, {report.files['documents']} document "
        f"file(s) and {report.files['mail']} mail copies; the database is at {report.upgraded_to}."
    )
    if report.missing_files:
        print(f"  {len(report.missing_files)} document file(s) were already missing at backup.")
    return _verify_audit(url)


def _verify_audit(url: str) -> int:
    from sqlalchemy.orm import Session

    from app.audit.service import verify
    from app.core.database import build_engine

    engine = build_engine(url, for_tests=True)
    try:
        with Session(engine) as session:
            audit = verify(session)
    finally:
        engine.dispose()
    if not audit.ok:
        print(f"audit trail BROKEN at row {audit.bad_seq}: {audit.problem}", file=sys.stderr)
        return 1
    print(f"audit trail intact: {audit.rows} rows.")
    return 0


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    """Walk the audit chain; exit 1 naming the first bad row (altered, removed or inserted)."""
    _settings_or_exit()
    from app.audit.service import verify
    from app.core.database import session_scope

    with session_scope() as session:
        report = verify(session)
    if not report.ok:
        print(
            f"audit trail BROKEN at row {report.bad_seq}: {report.problem} "
            f"({report.rows} rows verified before it)",
            file=sys.stderr,
        )
        return 1
    print(f"audit trail intact: {report.rows} rows, head {report.head_seq} {report.head_hash}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asylum-intake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate, then run API + worker + beat until Ctrl-C")
    run.add_argument("--port", type=int, default=None)
    run.add_argument("--concurrency", type=int, default=2)
    run.set_defaults(fn=cmd_run)
    mig = sub.add_parser("migrate", help="upgrade the database to the latest schema")
    mig.add_argument(
        "--check", action="store_true", help="only say whether migrations are pending (exit 1)"
    )
    mig.set_defaults(fn=cmd_migrate)
    api = sub.add_parser("api", help="run the HTTP API only")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=1)
    api.set_defaults(fn=cmd_api)
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.set_defaults(fn=cmd_worker)
    sub.add_parser("beat", help="run the Celery beat scheduler").set_defaults(fn=cmd_beat)
    admin = sub.add_parser("create-admin", help="create the first admin user")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", required=True)
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    admin.set_defaults(fn=cmd_create_admin)
    sub.add_parser("check", help="show the resolved configuration and reachability").set_defaults(
        fn=cmd_check
    )
    rotate = sub.add_parser(
        "rotate-key",
        help="re-wrap every data key under INTAKE_MASTER_KEY (old ones in INTAKE_OLD_MASTER_KEYS)",
    )
    rotate.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    rotate.set_defaults(fn=cmd_rotate_key)
    bk = sub.add_parser("backup", help="write one encrypted archive of the whole service")
    bk.add_argument("--output", "-o", default=None, help="file to write (default: dated name)")
    bk.set_defaults(fn=cmd_backup)
    rs = sub.add_parser("restore", help="restore an archive into an empty database")
    rs.add_argument("archive")
    rs.add_argument("--force", action="store_true", help="drop everything in the database first")
    rs.add_argument("--database-url", default=None, help="default: INTAKE_DATABASE_URL")
    rs.set_defaults(fn=cmd_restore)
    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    audit.add_parser(
        "verify", help="check the hash chain; exit 1 naming the first altered, removed or added row"
    ).set_defaults(fn=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


def console() -> NoReturn:
    """The ``asylum-intake`` command (and ``python -m app.cli``): ``main()``, then the process
    ends without the interpreter's teardown. Freeing the app's modules one by one costs most of
    a second of CPU at every exit of every process (api, worker, beat, ``run``'s children) and
    changes nothing: other threads are waited for and exit handlers (log flushing, the worker
    pool's finalizers) run first, as on a normal exit."""
    try:
        code: object = main()
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # as the interpreter does with SystemExit("message")
        code = 1
    # What the interpreter does first at exit, in its order: the thread pools' exit hooks stop
    # their idle threads, then every other non-daemon thread is waited for (joining them
    # ourselves would wait forever on an idle pool thread); then the exit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    console()
