"""hardening: anchored audit chains, a platform-only chain, private attachments,
idempotency leases and expiry, no secrets in stored responses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 06:30:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collabdesk.adapters.db.types import UTCDateTime

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): on SQLite a copy of work_orders would have to drop
    # a table other tables reference.
    op.add_column('work_orders', sa.Column('chain_length', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('work_orders', sa.Column('chain_head', sa.String(length=64), nullable=True))
    op.add_column('work_orders', sa.Column('platform_chain_length', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('work_orders', sa.Column('platform_chain_head', sa.String(length=64), nullable=True))
    op.add_column('evidence_attachments', sa.Column('visibility', sa.String(length=16), server_default=sa.text("'all'"), nullable=False))
    op.add_column('idempotency_keys', sa.Column('locked_until', UTCDateTime(), nullable=True))
    op.create_index(op.f('ix_idempotency_keys_created_at'), 'idempotency_keys', ['created_at'], unique=False)

    # A new unique constraint: SQLite needs the table copied (nothing references events).
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visibility', sa.String(length=16), server_default=sa.text("'all'"), nullable=False))
        batch_op.drop_constraint('uq_events_work_order_id_seq', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_events_work_order_id_visibility_seq'), ['work_order_id', 'visibility', 'seq'])

    # Anchor every existing chain at its current head.
    op.execute(
        "UPDATE work_orders SET "
        "chain_length = COALESCE((SELECT MAX(e.seq) FROM events e "
        "  WHERE e.work_order_id = work_orders.id), 0), "
        "chain_head = (SELECT e.hash FROM events e WHERE e.work_order_id = work_orders.id "
        "  ORDER BY e.seq DESC LIMIT 1)"
    )
    _scrub_stored_tokens()


def _scrub_stored_tokens() -> None:
    """Replays of account creations used to keep the new account's bearer token."""
    bind = op.get_bind()
    keys = sa.table('idempotency_keys', sa.column('account_id'), sa.column('key'),
                    sa.column('response_body'))
    rows = bind.execute(sa.select(keys).where(keys.c.response_body.like('%"token%'))).all()
    for account_id, key, body in rows:
        try:
            stored = json.loads(body)
            inner = json.loads(stored["body"])
        except (ValueError, KeyError, TypeError):
            bind.execute(keys.delete().where(keys.c.account_id == account_id,
                                             keys.c.key == key))
            continue
        if isinstance(inner, dict) and "token" in inner:
            del inner["token"]
            stored["body"] = json.dumps(inner)
            bind.execute(keys.update().where(keys.c.account_id == account_id,
                                             keys.c.key == key)
                         .values(response_body=json.dumps(stored)))


def downgrade() -> None:
    op.drop_index(op.f('ix_idempotency_keys_created_at'), table_name='idempotency_keys')
    op.drop_column('idempotency_keys', 'locked_until')
    op.drop_column('evidence_attachments', 'visibility')

    op.execute("DELETE FROM events WHERE visibility <> 'all'")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_events_work_order_id_visibility_seq'), type_='unique')
        batch_op.create_unique_constraint('uq_events_work_order_id_seq', ['work_order_id', 'seq'])
        batch_op.drop_column('visibility')

    for column in ('platform_chain_head', 'platform_chain_length', 'chain_head',
                   'chain_length'):
        op.drop_column('work_orders', column)
