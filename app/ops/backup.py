"""``asylum-intake backup`` and ``restore``: one consistent, encrypted archive of the service.

What goes in (a gzip'd tar inside the encrypted container of ``app/ops/archive.py``):

- ``manifest.json`` first: the schema revision, the database it came from, each table's row
  count and columns, the master key ids that wrapped keys use (never a key), the files.
- ``tables/<table>/<n>.jsonl``: every row of every table, a few thousand rows a part, each value
  written by its column's type (bytes as base64, instants as ISO 8601 in UTC, ids as text), so
  a backup of PostgreSQL restores into SQLite and the other way round.
- ``files/documents/...``: document bytes kept as files (``INTAKE_DOCUMENT_STORAGE=path``);
  ``files/mail/...``: the ``.eml`` copies of the embedded mail backend.

Consistency: every table is read in one transaction: PostgreSQL ``REPEATABLE READ, READ ONLY``
(one snapshot for every table, writers go on), SQLite a deferred read transaction (WAL keeps the
snapshot while the service writes). Document files are named by their SHA-256 and never
change, so those the snapshot's rows name are the right ones.

Restore goes into an empty database (fresh, or only ``migrate``'d: the regions and countries a
migration seeds are replaced by the backup's), brought to the backup's schema revision first and
to this version's newest after; a database holding data is refused unless ``force`` (which drops
every table first). Everything is inserted in one transaction, checked against the manifest's
counts, and only then committed.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from alembic.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Enum,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Time,
    TypeDecorator,
    Uuid,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.core import crypto, migrate
from app.core.database import build_engine
from app.core.settings import Settings
from app.core.time import now
from app.models import Base
from app.ops import archive
from app.ops.migrations import head_revision, known_revision
from app.ops.wrapped import all_key_ids, key_ids_in_use

ROWS_PER_PART = 2000
INSERT_BATCH = 500
#: Tables a migration fills (seed data): an otherwise empty database still counts as empty.
SEEDED_TABLES = frozenset({"regions", "countries"})


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


class NotEmpty(BackupError):
    pass


@dataclass
class BackupReport:
    master_key_id: str
    revision: str
    rows: dict[str, int]
    files: dict[str, int]
    key_ids: dict[str, dict[str, int]]
    bytes_written: int = 0


@dataclass
class RestoreReport:
    revision: str
    rows: dict[str, int]
    files: dict[str, int]
    upgraded_to: str
    missing_files: list[str] = field(default_factory=list)


# Values ------------------------------------------------------------------------------------


def _base_type(column: Column[Any]) -> Any:
    kind = column.type
    return kind.impl if isinstance(kind, TypeDecorator) else kind


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | dict | list):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} into a backup")


def decoder(column: Column[Any]) -> Callable[[Any], Any]:
    kind = _base_type(column)
    if isinstance(kind, JSON):
        return lambda v: v
    if isinstance(kind, LargeBinary):
        return base64.b64decode
    if isinstance(kind, DateTime):
        return dt.datetime.fromisoformat
    if isinstance(kind, Date):
        return dt.date.fromisoformat
    if isinstance(kind, Time):
        return dt.time.fromisoformat
    if isinstance(kind, Uuid):
        return uuid.UUID
    if isinstance(kind, Enum) and kind.enum_class is not None:
        return kind.enum_class
    return lambda v: v


def _decode_row(decoders: dict[str, Callable[[Any], Any]], row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is None else decoders[k](v)) for k, v in row.items()}


# Backup ------------------------------------------------------------------------------------


def _snapshot_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        # Autocommit at the driver and our own BEGIN: pysqlite would start no transaction for
        # a SELECT, and each table would be read at a different moment.
        return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    return create_engine(url, poolclass=NullPool, isolation_level="REPEATABLE READ")


def _begin_snapshot(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN DEFERRED")
        conn.exec_driver_sql("SELECT count(*) FROM sqlite_master")  # the snapshot starts here
    else:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BackupError(f"refusing a file outside its folder: {name!r}")
    return rel


def _table_rows(conn: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    pk = list(table.primary_key.columns)
    result = conn.execution_options(yield_per=ROWS_PER_PART).execute(select(table).order_by(*pk))
    for part in result.mappings().partitions(ROWS_PER_PART):
        yield [{k: encode(v) for k, v in row.items()} for row in part]


def backup(settings: Settings, out: IO[bytes], *, url: str | None = None) -> BackupReport:
    """Write the whole service to ``out`` (an open binary file), encrypted."""
    url = url or settings.resolved_database_url
    master = crypto.load_master_key(settings)
    engine = _snapshot_engine(url)
    started = now()
    try:
        with engine.connect() as conn:
            _begin_snapshot(conn)
            revision = _current_revision(conn)
            head = head_revision()
            if revision != head:
                raise BackupError(
                    f"The database is at schema revision {revision or '(none)'}, this version "
                    f"expects {head}: run `asylum-intake migrate` first (`migrate --check` tells)."
                )
            tables = list(Base.metadata.sorted_tables)
            counts = {
                t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0) for t in tables
            }
            key_ids = key_ids_in_use(conn)
            doc_paths = [
                p
                for p in conn.scalars(
                    text("SELECT path FROM documents WHERE storage = 'path' AND path IS NOT NULL")
                )
            ]
            mail_dir = settings.mail_dir
            mail_files = sorted(mail_dir.glob("*.eml")) if mail_dir.is_dir() else []
            doc_dir = settings.resolved_document_dir
            present_docs = sorted({p for p in doc_paths if (doc_dir / p).is_file()})
            missing_docs = sorted(set(doc_paths) - set(present_docs))
            manifest = {
                "format": archive.FORMAT,
                "created_at": started.isoformat(),
                "dialect": conn.dialect.name,
                "revision": revision,
                "master_key_id": master.key_id,
                "key_ids": key_ids,
                "tables": {
                    t.name: {"rows": counts[t.name], "columns": [c.name for c in t.columns]}
                    for t in tables
                },
                "files": {
                    "documents": present_docs,
                    "documents_missing": missing_docs,
                    "mail": [p.name for p in mail_files],
                },
            }
            writer = archive.EncryptingWriter(
                out, key_id=master.key_id, master=master.key, created_at=started.isoformat()
            )
            stamp = started.timestamp()
            with tarfile.open(fileobj=writer, mode="w|gz") as tar:  # type: ignore[call-overload]
                _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode(), stamp)
                for t in tables:
                    for n, part in enumerate(_table_rows(conn, t)):
                        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in part)
                        _add_bytes(tar, f"tables/{t.name}/{n:06d}.jsonl", body.encode(), stamp)
                conn.rollback()
                for rel in present_docs:
                    _add_bytes(tar, f"files/documents/{rel}", (doc_dir / rel).read_bytes(), stamp)
                for path in mail_files:
                    try:
                        data = path.read_bytes()
                    except FileNotFoundError:  # erased since the listing: gone on purpose
                        continue
                    _add_bytes(tar, f"files/mail/{path.name}", data, path.stat().st_mtime)
            writer.close()
    finally:
        engine.dispose()
    return BackupReport(
        master_key_id=master.key_id,
        revision=str(revision),
        rows=counts,
        files={"documents": len(present_docs), "mail": len(mail_files)},
        key_ids=key_ids,
    )


# Restore -----------------------------------------------------------------------------------


def open_archive(settings: Settings, src: IO[bytes]) -> archive.DecryptingReader:
    """The decrypting reader, or ArchiveKeyError naming the master key the backup needs."""
    header = archive.read_header(src)
    kid = str(header.get("key_id"))
    current = crypto.load_master_key(settings)
    keys = {**crypto.old_master_keys(settings), current.key_id: current.key}
    if kid not in keys:
        raise archive.ArchiveKeyError(
            f"This backup was encrypted with master key '{kid}', but INTAKE_MASTER_KEY is "
            f"'{current.key_id}' and INTAKE_OLD_MASTER_KEYS has no '{kid}'. Restore with the "
            "master key that was in use when the backup was made (kept apart from the backups)."
        )
    reader = archive.DecryptingReader(src, header, keys[kid])
    try:
        reader.check_key()
    except archive.ArchiveKeyError:
        raise archive.ArchiveKeyError(
            f"The master key configured as '{kid}' is not the one this backup was encrypted "
            "with: same id, different key. Nothing was restored."
        ) from None
    return reader


def _data_tables(conn: Connection) -> dict[str, int]:
    """Tables holding rows (seed tables and Alembic's own left out)."""
    found: dict[str, int] = {}
    for name in inspect(conn).get_table_names():
        if name in SEEDED_TABLES or name == "alembic_version":
            continue
        n = int(conn.scalar(text(f'SELECT count(*) FROM "{name}"')) or 0)  # noqa: S608
        if n:
            found[name] = n
    return found


def _drop_everything(engine: Engine) -> None:
    meta = MetaData()
    with engine.begin() as conn:
        meta.reflect(conn)
        meta.drop_all(conn)


def _check_keys(settings: Settings, manifest: dict[str, Any]) -> None:
    current = crypto.load_master_key(settings)
    have = {current.key_id, *crypto.old_master_keys(settings)}
    missing = sorted(all_key_ids(manifest.get("key_ids", {})) - have)
    if missing:
        raise BackupError(
            "The backup's data keys are wrapped by master key(s) "
            f"{', '.join(repr(k) for k in missing)}, which are not configured "
            "(INTAKE_MASTER_KEY, INTAKE_OLD_MASTER_KEYS): nothing was restored."
        )


def _prepare_target(url: str, revision: str, *, force: bool) -> None:
    engine = build_engine(url, for_tests=True)
    try:
        with engine.connect() as conn:
            busy = _data_tables(conn)
            current = (
                _current_revision(conn)
                if "alembic_version" in inspect(conn).get_table_names()
                else None
            )
        if busy and not force:
            listed = ", ".join(f"{k} ({v})" for k, v in sorted(busy.items())[:6])
            raise NotEmpty(
                f"The target database holds data ({listed}{', ...' if len(busy) > 6 else ''}): "
                "restore goes into an empty database. Point INTAKE_DATABASE_URL at a new one, "
                "or pass --force to drop everything in this one first."
            )
        if force and (busy or current is not None):
            _drop_everything(engine)
            current = None
        if current is None:
            with engine.connect() as conn:
                leftover = inspect(conn).get_table_names()
            if leftover and not force:
                raise NotEmpty(
                    f"The target database has tables ({', '.join(leftover[:6])}) but no schema "
                    "revision: use a new database or --force."
                )
            migrate.upgrade(url, revision)
        elif current != revision:
            raise BackupError(
                f"The target database is at schema revision {current}, the backup at {revision}: "
                "restore into a database that has not been migrated (it is brought to the "
                "backup's revision, restored, then upgraded), or pass --force."
            )
    finally:
        engine.dispose()


def _table_for(name: str, columns: list[str]) -> Table:
    model = Base.metadata.tables.get(name)
    if model is None:
        raise BackupError(f"The backup has a table '{name}' this version does not know.")
    unknown = [c for c in columns if c not in model.c]
    if unknown:
        raise BackupError(
            f"The backup's columns {name}.{', '.join(unknown)} are unknown to this version: "
            "restore with the version that made the backup, then upgrade."
        )
    # Only the backup's columns: the database is at the backup's revision.
    return Table(name, MetaData(), *[model.c[c]._copy() for c in columns])


def restore(
    settings: Settings,
    src: IO[bytes],
    *,
    url: str | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RestoreReport:
    url = url or settings.resolved_database_url
    say = progress or (lambda _m: None)
    reader = open_archive(settings, src)
    tar = tarfile.open(fileobj=reader, mode="r|gz")  # type: ignore[call-overload]  # noqa: SIM115
    members = iter(tar)
    first = next(members, None)
    if first is None or first.name != "manifest.json":
        raise archive.ArchiveError("The backup has no manifest: it is damaged.")
    manifest: dict[str, Any] = json.loads(_read(tar, first))
    revision = str(manifest["revision"])
    if not known_revision(revision):
        raise BackupError(
            f"The backup is at schema revision {revision}, which this version does not know "
            "(made by a newer release?): restore with that release."
        )
    _check_keys(settings, manifest)
    _prepare_target(url, revision, force=force)
    say(f"target database ready at revision {revision}")

    tables_meta: dict[str, dict[str, Any]] = manifest["tables"]
    rows_in: dict[str, int] = dict.fromkeys(tables_meta, 0)
    files_in = {"documents": 0, "mail": 0}
    engine = build_engine(url, for_tests=True)
    try:
        with engine.begin() as conn:
            model_order = [t.name for t in Base.metadata.sorted_tables]
            for name in reversed(model_order):
                if name in tables_meta and name in SEEDED_TABLES:
                    conn.execute(Base.metadata.tables[name].delete())
            loader = _Loader(conn, tables_meta)
            for member in members:
                if member.name.startswith("tables/"):
                    name = member.name.split("/")[1]
                    rows_in[name] += loader.load(name, _read(tar, member))
                elif member.name.startswith("files/") and member.isfile():
                    area, _, rel = member.name[len("files/") :].partition("/")
                    target = _file_target(settings, area, rel)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(_read(tar, member))
                    target.chmod(0o600)
                    files_in[area] += 1
            reader.drain()
            loader.finish()
            wrong = {
                n: (rows_in[n], m["rows"])
                for n, m in tables_meta.items()
                if rows_in[n] != m["rows"]
            }
            if wrong:
                raise BackupError(f"Row counts differ from the backup's manifest: {wrong}")
            say(f"{sum(rows_in.values())} rows in {len(rows_in)} tables restored")
    finally:
        engine.dispose()
    head = head_revision()
    if revision != head:
        migrate.upgrade(url)
        say(f"upgraded from {revision} to {head}")
    return RestoreReport(
        revision=revision,
        rows=rows_in,
        files=files_in,
        upgraded_to=head,
        missing_files=list(manifest["files"].get("documents_missing", [])),
    )


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise archive.ArchiveError(f"{member.name} is not a file: the backup is damaged.")
    return fh.read()


def _file_target(settings: Settings, area: str, rel: str) -> Path:
    safe = _safe_relative(rel)
    if area == "documents":
        return settings.resolved_document_dir.joinpath(*safe.parts)
    if area == "mail" and len(safe.parts) == 1:
        return settings.mail_dir / safe.name
    raise BackupError(f"unknown file in the backup: files/{area}/{rel}")


class _Loader:
    """Inserts a table's parts. A foreign key to a table not loaded yet (a request merged into
    a later one refers to its own table) is set after every row is in."""

    def __init__(self, conn: Connection, tables_meta: dict[str, dict[str, Any]]) -> None:
        self.conn = conn
        self.meta = tables_meta
        self.loaded: set[str] = set()
        self.tables: dict[str, Table] = {}
        self.later: list[tuple[Table, str, dict[str, Any], dict[str, Any]]] = []

    def _table(self, name: str) -> Table:
        if name not in self.tables:
            self.tables[name] = _table_for(name, self.meta[name]["columns"])
        return self.tables[name]

    def load(self, name: str, body: bytes) -> int:
        table = self._table(name)
        model = Base.metadata.tables[name]
        decoders = {c.name: decoder(c) for c in table.columns}
        deferred = [
            fk.parent.name
            for fk in model.foreign_keys
            if fk.parent.name in table.c
            and (fk.column.table.name == name or fk.column.table.name not in self.loaded)
            and fk.column.table.name in self.meta
        ]
        pk = [c.name for c in model.primary_key.columns]
        rows = []
        for line in body.splitlines():
            row = _decode_row(decoders, json.loads(line))
            later = {c: row[c] for c in deferred if row.get(c) is not None}
            if later:
                for c in later:
                    row[c] = None
                self.later.append((table, name, {k: row[k] for k in pk}, later))
            rows.append(row)
        for i in range(0, len(rows), INSERT_BATCH):
            self.conn.execute(table.insert(), rows[i : i + INSERT_BATCH])
        self.loaded.add(name)
        return len(rows)

    def finish(self) -> None:
        for table, _name, key, values in self.later:
            where = [table.c[k] == v for k, v in key.items()]
            self.conn.execute(table.update().where(*where).values(values))
        if self.conn.dialect.name == "postgresql":
            self._reset_sequences()

    def _reset_sequences(self) -> None:
        """Identity and serial columns continue after the restored rows."""
        for name in self.loaded:
            model = Base.metadata.tables[name]
            for col in model.primary_key.columns:
                if col.autoincrement is True or (
                    col.autoincrement == "auto"
                    and len(model.primary_key.columns) == 1
                    and isinstance(_base_type(col), Integer)
                ):
                    seq = self.conn.scalar(
                        text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": name, "c": col.name}
                    )
                    if seq:
                        self.conn.execute(
                            # Names from the models, never from the archive.
                            text(
                                f'SELECT setval(:s, COALESCE((SELECT max("{col.name}") FROM '  # noqa: S608
                                f'"{name}"), 0) + 1, false)'
                            ),
                            {"s": seq},
                        )
