"""duty roster, escalation chain and SLA reports

Revision ID: d4f0b0c2f013
Revises: c3e0a0d1f011
Create Date: 2026-11-23 13:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = 'd4f0b0c2f013'
down_revision: str | None = 'c3e0a0d1f011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _level() -> sa.Enum:
    return sa.Enum('member', 'lead', 'supervisor', name='duty_level', native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table('roster_shifts',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('starts_local', sa.Time(), nullable=False),
    sa.Column('ends_local', sa.Time(), nullable=False),
    sa.Column('level', _level(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('weekday >= 0 AND weekday <= 6', name=op.f('ck_roster_shifts_weekday_range')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_roster_shifts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_shifts'))
    )
    with op.batch_alter_table('roster_shifts', schema=None) as batch_op:
        batch_op.create_index('ix_roster_shifts_user_id', ['user_id'], unique=False)

    op.create_table('roster_overrides',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('extra', 'cancel', name='override_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('starts_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('level', _level(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_roster_overrides_ends_after_start')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_roster_overrides_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_overrides'))
    )
    with op.batch_alter_table('roster_overrides', schema=None) as batch_op:
        batch_op.create_index('ix_roster_overrides_ends_at', ['ends_at'], unique=False)

    op.create_table('escalations',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('opened_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('level_sent_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.Uuid(), nullable=True),
    sa.Column('acknowledged_via', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name=op.f('fk_escalations_acknowledged_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_escalations_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations')),
    sa.UniqueConstraint('request_id', name=op.f('uq_escalations_request_id'))
    )


def downgrade() -> None:
    op.drop_table('escalations')
    with op.batch_alter_table('roster_overrides', schema=None) as batch_op:
        batch_op.drop_index('ix_roster_overrides_ends_at')
    op.drop_table('roster_overrides')
    with op.batch_alter_table('roster_shifts', schema=None) as batch_op:
        batch_op.drop_index('ix_roster_shifts_user_id')
    op.drop_table('roster_shifts')
