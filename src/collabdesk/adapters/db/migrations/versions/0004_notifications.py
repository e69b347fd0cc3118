"""notifications: the outbox, store webhooks, an account's language, delivery attempts,
inbox rows in the order they were stored (live streams)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collabdesk.adapters.db.types import UTCDateTime

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('pending', 'retrying')"


def upgrade() -> None:
    op.add_column('accounts', sa.Column('language', sa.String(length=8),
                                        server_default=sa.text("'zh'"), nullable=False))
    op.add_column('inbox', sa.Column('stored_at', UTCDateTime(), nullable=True))
    inbox = sa.table('inbox', sa.column('created_at', UTCDateTime()),
                     sa.column('stored_at', UTCDateTime()))
    op.get_bind().execute(inbox.update().values(stored_at=inbox.c.created_at))
    op.create_index('ix_inbox_stored_at_id', 'inbox', ['stored_at', 'id'])
    op.create_index('ix_inbox_recipient_id_stored_at_id', 'inbox',
                    ['recipient_id', 'stored_at', 'id'])

    op.add_column('deliveries', sa.Column('attempt', sa.Integer(), nullable=True))
    op.add_column('deliveries', sa.Column('event_id', sa.String(length=64), nullable=True))
    op.add_column('deliveries', sa.Column('destination', sa.String(length=254),
                                          nullable=True))
    op.create_index('ix_deliveries_recipient_store_id_at_id', 'deliveries',
                    ['recipient_store_id', 'at', 'id'])

    op.create_table(
        'webhooks',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('secret_salt', sa.String(length=64), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('failing_since', UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_delivered_at', UTCDateTime(), nullable=True),
        sa.Column('disabled_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['store_id'], ['stores.id'],
                                name=op.f('fk_webhooks_store_id_stores')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks')),
    )
    op.create_index('ix_webhooks_store_id', 'webhooks', ['store_id'])

    op.create_table(
        'outbox',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('work_order_id', sa.String(length=64), nullable=True),
        sa.Column('store_id', sa.String(length=64), nullable=True),
        sa.Column('recipient_id', sa.String(length=64), nullable=False),
        sa.Column('destination', sa.Text(), nullable=False),
        sa.Column('event_id', sa.String(length=64), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('first_due_at', UTCDateTime(), nullable=False),
        sa.Column('due_at', UTCDateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('line_id', sa.String(length=64), nullable=False),
        sa.Column('lease_until', UTCDateTime(), nullable=True),
        sa.Column('lease_token', sa.String(length=32), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('done_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    )
    op.create_index('ix_outbox_due', 'outbox', ['due_at', 'id'],
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.create_index('ix_outbox_open_recipient', 'outbox', ['recipient_id'],
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.create_index('ix_outbox_done_at', 'outbox', ['done_at'],
                    sqlite_where=sa.text('done_at IS NOT NULL'),
                    postgresql_where=sa.text('done_at IS NOT NULL'))
    op.create_index('ix_outbox_event_id', 'outbox', ['event_id'])


def downgrade() -> None:
    op.drop_table('outbox')
    op.drop_table('webhooks')
    op.drop_index('ix_deliveries_recipient_store_id_at_id', table_name='deliveries')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('destination')
        batch.drop_column('event_id')
        batch.drop_column('attempt')
    op.drop_index('ix_inbox_recipient_id_stored_at_id', table_name='inbox')
    op.drop_index('ix_inbox_stored_at_id', table_name='inbox')
    with op.batch_alter_table('inbox') as batch:
        batch.drop_column('stored_at')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('language')
