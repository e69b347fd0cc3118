"""Plain records the services keep alongside work orders: accounts, notes, evidence,
inbox items and delivery log lines. No behaviour beyond what their fields say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .states import Role


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    role: Role
    store_id: str | None
    phone: str | None
    email: str | None
    login: str | None
    handles_work_orders: bool
    created_at: datetime
    language: str = "zh"  # of its notifications: "zh" or "en"


@dataclass(frozen=True)
class Note:
    id: str
    work_order_id: str
    author_id: str
    author_role: Role
    text: str
    visibility: str
    evidence_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class EvidenceRecord:
    id: str
    sha256: str
    media_type: str
    size: int
    filename: str | None
    uploaded_by: str
    uploaded_at: datetime


class InboxKind(StrEnum):
    WORK_ORDER_CREATED = "work_order_created"
    REMINDER = "reminder"
    TIMEOUT = "timeout"
    CONFIRMATION_REQUESTED = "confirmation_requested"
    VERIFICATION_DECIDED = "verification_decided"
    JUDGED = "judged"
    APPEAL_DECIDED = "appeal_decided"
    VIOLATION_RECORDED = "violation_recorded"
    WORK_ORDER_CLOSED = "work_order_closed"
    STATE_CHANGED = "state_changed"
    WEBHOOK_DISABLED = "webhook_disabled"


@dataclass(frozen=True)
class InboxItem:
    id: str
    recipient_id: str
    kind: InboxKind
    work_order_id: str | None
    text: str
    created_at: datetime
    read: bool = False


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETRYING = "retrying"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Delivery:
    id: str
    work_order_id: str | None
    recipient_id: str
    recipient_store_id: str | None
    channel: str
    kind: str
    status: DeliveryStatus
    reason: str | None
    at: datetime
    attempt: int | None = None  # 1, 2, ... on the outbox's channels
    event_id: str | None = None  # a webhook delivery's event id
    destination: str | None = None  # masked phone or email, or the webhook's URL


class Channel(StrEnum):
    INBOX = "inbox"
    SMS = "sms"
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass
class OutboxMessage:
    """A message to send on an external channel, stored with the change that causes it.
    `payload` is what goes out: JSON `{"text"}` (sms), `{"subject", "text"}` (email), or
    the webhook's exact body. `first_due_at` anchors the retry schedule."""

    channel: Channel
    kind: str
    work_order_id: str | None
    store_id: str | None
    recipient_id: str
    destination: str
    event_id: str | None
    payload: str
    created_at: datetime
    first_due_at: datetime
    due_at: datetime
    line_id: str
    attempts: int = 0
    status: DeliveryStatus = DeliveryStatus.PENDING
    last_error: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Webhook:
    id: str
    store_id: str
    url: str
    events: tuple[str, ...]
    secret_salt: str
    enabled: bool
    created_at: datetime
    created_by: str
    failing_since: datetime | None = None
    last_error: str | None = None
    last_delivered_at: datetime | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class Timer:
    id: int
    work_order_id: str
    kind: str
    due_at: datetime
