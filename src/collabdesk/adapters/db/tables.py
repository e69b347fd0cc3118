"""The schema, as SQLAlchemy Core tables. Migrations (alembic) are the source of truth in
deployed databases; keep this file and the newest migration in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
    text,
)

from .types import UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

ID = 64

stores = Table(
    "stores", metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("store_id", String(ID), ForeignKey("stores.id"), nullable=True),
    Column("phone", String(32)),
    Column("email", String(254)),
    Column("login", String(100), unique=True),
    Column("password_hash", String(255)),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("handles_work_orders", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UTCDateTime, nullable=False),
    # The language of the account's notifications: "zh" (default) or "en".
    Column("language", String(8), nullable=False, server_default=text("'zh'")),
    Index(None, "store_id"),
)

orders = Table(
    "orders", metadata,
    Column("id", String(ID), primary_key=True),
    Column("store_id", String(ID), ForeignKey("stores.id"), nullable=False),
    Column("consumer_id", String(ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("paid_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "store_id", "paid_at"),
)

work_orders = Table(
    "work_orders", metadata,
    Column("id", String(ID), primary_key=True),
    Column("order_id", String(ID), ForeignKey("orders.id"), nullable=False),
    Column("store_id", String(ID), nullable=False),
    Column("consumer_id", String(ID), nullable=False),
    Column("order_kind", String(16), nullable=False),
    Column("order_amount_cents", BigInteger, nullable=False),
    Column("category", String(32), nullable=False),
    Column("claim", Text, nullable=False),
    Column("requested_remedy", JSON),
    Column("state", String(32), nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(ID), nullable=False),
    Column("due_at", UTCDateTime),
    Column("state_entered_at", UTCDateTime, nullable=False),
    Column("evidence_waived", Boolean, nullable=False),
    Column("reply", JSON),
    Column("replied_at", UTCDateTime),
    Column("judgment", JSON),
    Column("judged_at", UTCDateTime),
    Column("appeal", JSON),
    Column("verification", JSON),
    Column("consumer_response", JSON),
    Column("settlement", JSON),
    Column("counts_as_dispute", Boolean, nullable=False),
    Column("timed_out_at", UTCDateTime),
    Column("escalated_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("sla_overdue", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    # The head of each audit chain, written with its events: anchors them (audit verify).
    Column("chain_length", Integer, nullable=False, server_default=text("0")),
    Column("chain_head", String(64)),
    Column("platform_chain_length", Integer, nullable=False, server_default=text("0")),
    Column("platform_chain_head", String(64)),
    # The list's sort key: `due_at`, or the far future for none, so that "soonest due
    # first, then id" is an index order. Always written with the row (mapping.py).
    Column("sort_due_at", UTCDateTime),
    # One open work order per order, enforced by the database even under races.
    Index("uq_work_orders_open_order", "order_id", unique=True,
          sqlite_where=text("is_open"), postgresql_where=text("is_open")),
    Index(None, "store_id", "created_at"),
    Index(None, "store_id", "judged_at"),
    # One index per filter of the list (GET /v1/work-orders), each ending in the sort key,
    # so a first page reads `limit` index entries whatever the store's size.
    Index(None, "sort_due_at", "id"),
    Index(None, "store_id", "sort_due_at", "id"),
    Index(None, "store_id", "state", "sort_due_at", "id"),
    Index(None, "consumer_id", "sort_due_at", "id"),
    Index(None, "consumer_id", "state", "sort_due_at", "id"),
    Index(None, "state", "sort_due_at", "id"),
    Index("ix_work_orders_overdue_sort_due_at_id", "sort_due_at", "id",
          sqlite_where=text("sla_overdue = 1"), postgresql_where=text("sla_overdue")),
)

contacts = Table(
    "contacts", metadata,
    Column("id", String(ID), primary_key=True),
    Column("work_order_id", String(ID), ForeignKey("work_orders.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("contacted_at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("summary", Text),
    Column("evidence_ids", JSON, nullable=False),
    Column("recorded_by", String(ID), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "work_order_id", "recorded_at"),
)

notes = Table(
    "notes", metadata,
    Column("id", String(ID), primary_key=True),
    Column("work_order_id", String(ID), ForeignKey("work_orders.id"), nullable=False),
    Column("author_id", String(ID), nullable=False),
    Column("author_role", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("evidence_ids", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "work_order_id", "created_at"),
)

evidence = Table(
    "evidence", metadata,
    Column("id", String(ID), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("filename", String(255)),
    Column("uploaded_by", String(ID), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    Index(None, "sha256"),
)

evidence_attachments = Table(
    "evidence_attachments", metadata,
    Column("evidence_id", String(ID), ForeignKey("evidence.id"), primary_key=True),
    Column("work_order_id", String(ID), ForeignKey("work_orders.id"), primary_key=True),
    Column("attached_at", UTCDateTime, nullable=False),
    # "all": the parties of the work order may read it; "platform": platform roles only.
    Column("visibility", String(16), nullable=False, server_default=text("'all'")),
    Index(None, "work_order_id"),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", String(ID), ForeignKey("work_orders.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    # `at` and `data` are kept as the exact text that was hashed.
    Column("at", String(40), nullable=False),
    Column("actor_id", String(ID), nullable=False),
    Column("type", String(40), nullable=False),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64)),
    Column("hash", String(64), nullable=False),
    # Which chain: "all" (every party) or "platform" (platform roles and the author).
    Column("visibility", String(16), nullable=False, server_default=text("'all'")),
    UniqueConstraint("work_order_id", "visibility", "seq"),
)

timers = Table(
    "timers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", String(ID), ForeignKey("work_orders.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("fired_at", UTCDateTime),
    Column("cancelled_at", UTCDateTime),
    Index("ix_timers_pending_due", "due_at", "id",
          sqlite_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
          postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL")),
    # A transition cancels its work order's pending timers: an index with the same
    # predicate, so the planner never walks every pending timer instead.
    Index("ix_timers_pending_work_order", "work_order_id",
          sqlite_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
          postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL")),
)
# A timer neither fired nor cancelled: the predicate of the two partial indexes above,
# written the same way everywhere so the planner can use them.
TIMER_PENDING = and_(timers.c.fired_at.is_(None), timers.c.cancelled_at.is_(None))

inbox = Table(
    "inbox", metadata,
    Column("id", String(ID), primary_key=True),
    Column("recipient_id", String(ID), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("work_order_id", String(ID)),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("read", Boolean, nullable=False),
    # When the row was written (the real time, whatever the clock says): the order live
    # streams follow, since `created_at` of a late-fired timer's notice lies in the past.
    Column("stored_at", UTCDateTime),
    Index(None, "recipient_id", "created_at", "id"),
    Index(None, "stored_at", "id"),
    Index(None, "recipient_id", "stored_at", "id"),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", String(ID), primary_key=True),
    Column("work_order_id", String(ID)),
    Column("recipient_id", String(ID), nullable=False),
    Column("recipient_store_id", String(ID)),
    Column("channel", String(16), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("at", UTCDateTime, nullable=False),
    Column("attempt", Integer),  # 1, 2, ... for sms/email/webhook; none for inbox
    Column("event_id", String(ID)),  # a webhook's event id
    Column("destination", String(254)),  # masked phone, masked email, webhook URL
    Index(None, "work_order_id", "at"),
    Index(None, "recipient_store_id", "at", "id"),
)

# Webhooks a store registered. The signing secret is not stored: it is derived from the
# server's secret key and `secret_salt` (services/webhooks.py).
webhooks = Table(
    "webhooks", metadata,
    Column("id", String(ID), primary_key=True),
    Column("store_id", String(ID), ForeignKey("stores.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret_salt", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(ID), nullable=False),
    # The current run of failures: since when (the first failed attempt's due time), why.
    Column("failing_since", UTCDateTime),
    Column("last_error", Text),
    Column("last_delivered_at", UTCDateTime),
    Column("disabled_at", UTCDateTime),
    Index(None, "store_id"),
)

# The transactional outbox: a message to send on an external channel (sms, email,
# webhook), written in the transaction of the change that causes it and sent at least
# once by the dispatcher (services/outbox.py), retried on its schedule.
outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("work_order_id", String(ID)),
    Column("store_id", String(ID)),  # the recipient's store (a merchant, a webhook)
    Column("recipient_id", String(ID), nullable=False),  # an account or a webhook
    Column("destination", Text, nullable=False),  # phone, email address, URL
    Column("event_id", String(ID)),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("first_due_at", UTCDateTime, nullable=False),  # the retry schedule's origin
    Column("due_at", UTCDateTime, nullable=False),  # the next attempt
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending, retrying, delivered, ...
    Column("line_id", String(ID), nullable=False),  # the delivery line of attempt 1
    # A dispatcher sending it: until when (real time), and its claim's token.
    Column("lease_until", UTCDateTime),
    Column("lease_token", String(32)),
    Column("last_error", Text),
    Column("done_at", UTCDateTime),
    Index("ix_outbox_due", "due_at", "id",
          sqlite_where=text("status IN ('pending', 'retrying')"),
          postgresql_where=text("status IN ('pending', 'retrying')")),
    # A webhook's unsent messages (given up when it is removed or switched off).
    Index("ix_outbox_open_recipient", "recipient_id",
          sqlite_where=text("status IN ('pending', 'retrying')"),
          postgresql_where=text("status IN ('pending', 'retrying')")),
    # Finished messages, oldest first, for the purge.
    Index("ix_outbox_done_at", "done_at", sqlite_where=text("done_at IS NOT NULL"),
          postgresql_where=text("done_at IS NOT NULL")),
    Index(None, "event_id"),
)
# A message still to send: the predicate of the partial index above.
OUTBOX_OPEN = outbox.c.status.in_([literal_column("'pending'"), literal_column("'retrying'")])

violations = Table(
    "violations", metadata,
    Column("id", String(ID), primary_key=True),
    Column("store_id", String(ID), ForeignKey("stores.id"), nullable=False),
    Column("work_order_id", String(ID), ForeignKey("work_orders.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("points", Integer, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("evidence_ids", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(ID), nullable=False),
    Column("appeal_statement", Text),
    Column("appealed_at", UTCDateTime),
    Column("decision", String(16)),
    Column("decision_rationale", Text),
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(ID)),
    Column("version", Integer, nullable=False),
    Index(None, "store_id"),
)

points_ledger = Table(
    "points_ledger", metadata,
    Column("id", String(ID), primary_key=True),
    Column("store_id", String(ID), ForeignKey("stores.id"), nullable=False),
    Column("year", Integer, nullable=False),
    Column("violation_id", String(ID), ForeignKey("violations.id"), nullable=False),
    Column("points", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "store_id", "year", "at"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("account_id", String(ID), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # While the first request runs: when its reservation lapses (a crash never finishes).
    Column("locked_until", UTCDateTime),
    Index(None, "created_at"),
)

# Store metrics kept by day (UTC), in the same transaction as the facts they count, so a
# report sums `window_days` rows instead of reading every work order (services/rollups.py).
# Counters by the day a work order was opened, except `disputes`/`overturned` (the day of
# its ruling) and `paid_orders` (the day an order was paid).
store_daily = Table(
    "store_daily", metadata,
    Column("store_id", String(ID), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("opened", Integer, nullable=False, server_default=text("0")),
    Column("replied", Integer, nullable=False, server_default=text("0")),
    Column("replied_on_time", Integer, nullable=False, server_default=text("0")),
    Column("timeouts", Integer, nullable=False, server_default=text("0")),
    Column("agreements", Integer, nullable=False, server_default=text("0")),
    Column("interventions", Integer, nullable=False, server_default=text("0")),
    Column("disputes", Integer, nullable=False, server_default=text("0")),
    Column("overturned", Integer, nullable=False, server_default=text("0")),
    Column("paid_orders", Integer, nullable=False, server_default=text("0")),
)

# Reply times by whole minute (replied_at - created_at), per store and opening day: the
# median reply time of any window is exact to the minute.
store_reply_minutes = Table(
    "store_reply_minutes", metadata,
    Column("store_id", String(ID), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("count", Integer, nullable=False, server_default=text("0")),
)
