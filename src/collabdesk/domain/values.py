"""Value objects shared by the aggregate, the services and the API schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .errors import ValidationFailed
from .states import Role


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, the one format the API and the audit chain use."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every instant in collabdesk is timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Category(StrEnum):
    NOT_RECEIVED = "not_received"
    NOT_AS_DESCRIBED = "not_as_described"
    QUALITY = "quality"
    DAMAGED = "damaged"
    REFUND = "refund"
    LOGISTICS = "logistics"
    OTHER = "other"


class RemedyType(StrEnum):
    REFUND = "refund"
    RETURN_AND_REFUND = "return_and_refund"
    EXCHANGE = "exchange"
    REISSUE = "reissue"
    REPAIR = "repair"
    COMPENSATION = "compensation"
    OTHER = "other"


AMOUNT_REQUIRED = frozenset({RemedyType.REFUND, RemedyType.RETURN_AND_REFUND,
                             RemedyType.COMPENSATION})


@dataclass(frozen=True)
class Remedy:
    """A remedy asked for, agreed or ruled: refund, exchange... with money in cents."""

    type: RemedyType
    amount_cents: int | None = None
    note: str | None = None

    def check_against(self, order_amount_cents: int, field_name: str) -> None:
        if self.type in AMOUNT_REQUIRED and self.amount_cents is None:
            raise ValidationFailed(f"{field_name}.amount_cents is required for {self.type}")
        if self.amount_cents is not None:
            if self.amount_cents <= 0:
                raise ValidationFailed(f"{field_name}.amount_cents must be positive")
            if self.amount_cents > order_amount_cents:
                raise ValidationFailed(
                    f"{field_name}.amount_cents {self.amount_cents} exceeds the order's "
                    f"amount {order_amount_cents}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"type": str(self.type), "amount_cents": self.amount_cents, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Remedy | None:
        if data is None:
            return None
        return cls(RemedyType(data["type"]), data.get("amount_cents"), data.get("note"))


class OrderKind(StrEnum):
    STANDARD = "standard"
    WORRY_FREE = "worry_free"


class StorePlatform(StrEnum):
    TAOBAO = "taobao"
    TMALL = "tmall"


@dataclass(frozen=True)
class Store:
    id: str
    name: str
    platform: StorePlatform


@dataclass(frozen=True)
class Order:
    id: str
    store_id: str
    consumer_id: str
    kind: OrderKind
    amount_cents: int
    paid_at: datetime


@dataclass(frozen=True)
class Actor:
    """Who is acting: an account, or the system's deadline runner."""

    id: str
    role: Role
    store_id: str | None = None
    # For a merchant_agent: whether the owner lets it handle work orders (rules.md §7).
    handles_work_orders: bool = True


SYSTEM_ACTOR = Actor(id="system", role=Role.SYSTEM)


class ContactChannel(StrEnum):
    IM = "im"
    PHONE = "phone"
    SMS = "sms"
    OTHER = "other"


class ContactOutcome(StrEnum):
    REACHED = "reached"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Contact:
    id: str
    work_order_id: str
    channel: ContactChannel
    contacted_at: datetime
    outcome: ContactOutcome
    summary: str | None
    evidence_ids: tuple[str, ...]
    recorded_by: str
    recorded_at: datetime


class Ruling(StrEnum):
    FOR_CONSUMER = "for_consumer"
    FOR_MERCHANT = "for_merchant"


class AppealDecision(StrEnum):
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class VerificationOutcome(StrEnum):
    CONTACT_VERIFIED = "contact_verified"
    CONTACT_REJECTED = "contact_rejected"
    UNRELATED_CONFIRMED = "unrelated_confirmed"
    UNRELATED_REJECTED = "unrelated_rejected"


class NoteVisibility(StrEnum):
    ALL = "all"
    PLATFORM = "platform"


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened to a work order; becomes one link of its audit chain."""

    type: str
    actor_id: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    # "all": every party of the case sees it; "platform": only the platform and its author.
    visibility: str = "all"
