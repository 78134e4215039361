"""inbound mail set aside

Every message that is not taken as a person's mail (auto-replies, list mail, bounces, read
receipts, our own mail, loops, unreadable ones) leaves a row here: why, when, how large, and,
encrypted with the row's own data key, who sent it, its subject and the raw message, so staff
can open it as a request. The daily retention run deletes rows past their period.

Revision ID: f1a2b3c4d518
Revises: e6a1c4d2b017
Create Date: 2026-12-06 01:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = 'f1a2b3c4d518'
down_revision: str | None = 'e6a1c4d2b017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = (
    'auto_reply',
    'mailing_list',
    'bounce',
    'read_receipt',
    'own_mail',
    'loop',
    'delivery_report_unmatched',
    'unreadable',
)


def upgrade() -> None:
    op.create_table('inbound_set_aside',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('received_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Enum(*REASONS, name='set_aside_reason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('message_key', sa.String(length=64), nullable=False),
    sa.Column('sender_lookup', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.Column('data_key_id', sa.String(length=64), nullable=False),
    sa.Column('data_key_enc', sa.LargeBinary(), nullable=False),
    sa.Column('data_enc', sa.LargeBinary(), nullable=False),
    sa.Column('raw_enc', sa.LargeBinary(), nullable=True),
    sa.Column('opened_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opened_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['opened_by'], ['users.id'], name=op.f('fk_inbound_set_aside_opened_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_inbound_set_aside_request_id_requests'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_set_aside')),
    sa.UniqueConstraint('message_key', name=op.f('uq_inbound_set_aside_message_key'))
    )
    with op.batch_alter_table('inbound_set_aside', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_set_aside_recorded_at', ['recorded_at'], unique=False)
        batch_op.create_index('ix_inbound_set_aside_request_id', ['request_id'], unique=False)
        batch_op.create_index('ix_inbound_set_aside_sender_lookup', ['sender_lookup'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_set_aside', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_set_aside_sender_lookup')
        batch_op.drop_index('ix_inbound_set_aside_request_id')
        batch_op.drop_index('ix_inbound_set_aside_recorded_at')
    op.drop_table('inbound_set_aside')
