"""Where the database stands against this version's migrations (``migrate --check``)."""

from __future__ import annotations

from dataclasses import dataclass

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from app.core import migrate


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the project always has migrations
        raise RuntimeError("no migrations found")
    return head


def known_revision(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:
        return False


@dataclass(frozen=True)
class MigrationState:
    current: str | None
    head: str
    pending: list[str]  # oldest first
    unknown: bool  # the database is at a revision this version does not know (newer release)

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.unknown


def state(engine: Engine) -> MigrationState:
    scripts = _scripts()
    head = head_revision()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current is not None and not known_revision(current):
        return MigrationState(current, head, [], unknown=True)
    pending = [s.revision for s in scripts.iterate_revisions(head, current or "base")]
    pending.reverse()
    return MigrationState(current, head, pending, unknown=False)
