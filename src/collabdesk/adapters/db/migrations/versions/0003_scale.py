"""scale: the list's stored sort key with an index per filter, daily metric rollups,
pending timers indexed by work order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from collabdesk.adapters.db.types import UTCDateTime

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)

COUNTERS = ('opened', 'replied', 'replied_on_time', 'timeouts', 'agreements',
            'interventions', 'disputes', 'overturned', 'paid_orders')


def upgrade() -> None:
    op.add_column('work_orders', sa.Column('sort_due_at', UTCDateTime(), nullable=True))
    # Through the column type, so SQLite gets the same text form the application writes.
    work_orders = sa.table('work_orders', sa.column('due_at', UTCDateTime()),
                           sa.column('sort_due_at', UTCDateTime()))
    op.get_bind().execute(work_orders.update().values(sort_due_at=sa.func.coalesce(
        work_orders.c.due_at, sa.literal(FAR_FUTURE, UTCDateTime()))))
    op.drop_index('ix_work_orders_due_at_id', table_name='work_orders')
    op.drop_index('ix_work_orders_consumer_id', table_name='work_orders')
    for columns in (['sort_due_at', 'id'], ['store_id', 'sort_due_at', 'id'],
                    ['store_id', 'state', 'sort_due_at', 'id'],
                    ['consumer_id', 'sort_due_at', 'id'],
                    ['consumer_id', 'state', 'sort_due_at', 'id'],
                    ['state', 'sort_due_at', 'id']):
        op.create_index('ix_work_orders_' + '_'.join(columns), 'work_orders', columns)
    op.create_index('ix_work_orders_overdue_sort_due_at_id', 'work_orders',
                    ['sort_due_at', 'id'], sqlite_where=sa.text('sla_overdue = 1'),
                    postgresql_where=sa.text('sla_overdue'))

    op.drop_index('ix_timers_work_order_id', table_name='timers')
    op.create_index('ix_timers_pending_work_order', 'timers', ['work_order_id'],
                    sqlite_where=sa.text('fired_at IS NULL AND cancelled_at IS NULL'),
                    postgresql_where=sa.text('fired_at IS NULL AND cancelled_at IS NULL'))

    op.create_table(
        'store_daily',
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *[sa.Column(name, sa.Integer(), server_default=sa.text('0'), nullable=False)
          for name in COUNTERS],
        sa.PrimaryKeyConstraint('store_id', 'day', name=op.f('pk_store_daily')),
    )
    op.create_table(
        'store_reply_minutes',
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('minute', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.PrimaryKeyConstraint('store_id', 'day', 'minute',
                                name=op.f('pk_store_reply_minutes')),
    )
    # The rollups of the work orders and orders already there, computed as
    # `collabdesk metrics rebuild` does (the same code, on this migration's connection).
    # SqlRollups reads only columns that exist since 0001, so a later migration does not
    # break this one.
    from collabdesk.adapters.db.rollups import SqlRollups
    from collabdesk.services.rollups import refill

    refill(SqlRollups(op.get_bind()))


def downgrade() -> None:
    op.drop_table('store_reply_minutes')
    op.drop_table('store_daily')
    op.drop_index('ix_timers_pending_work_order', table_name='timers')
    op.create_index('ix_timers_work_order_id', 'timers', ['work_order_id'])
    op.drop_index('ix_work_orders_overdue_sort_due_at_id', table_name='work_orders')
    for columns in (['state', 'sort_due_at', 'id'],
                    ['consumer_id', 'state', 'sort_due_at', 'id'],
                    ['consumer_id', 'sort_due_at', 'id'],
                    ['store_id', 'state', 'sort_due_at', 'id'],
                    ['store_id', 'sort_due_at', 'id'], ['sort_due_at', 'id']):
        op.drop_index('ix_work_orders_' + '_'.join(columns), table_name='work_orders')
    op.create_index('ix_work_orders_consumer_id', 'work_orders', ['consumer_id'])
    op.create_index('ix_work_orders_due_at_id', 'work_orders', ['due_at', 'id'])
    op.drop_column('work_orders', 'sort_due_at')
