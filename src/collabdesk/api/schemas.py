"""Request bodies (pydantic) and response renderers, named as in api.md."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from collabdesk.domain import bounds
from collabdesk.domain.audit import ChainLink
from collabdesk.domain.records import Account, Delivery, EvidenceRecord, InboxItem, Note, Webhook
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role
from collabdesk.domain.values import (
    AppealDecision,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    NoteVisibility,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    Store,
    StorePlatform,
    VerificationOutcome,
)
from collabdesk.domain.violations import Severity, ViolationDecision, ViolationKind
from collabdesk.services.violations import PointsStatement

# The shapes webhooks carry too, re-exported for the routes.
from collabdesk.services.wire import iso_or_none as iso_or_none
from collabdesk.services.wire import remedy_out as remedy_out
from collabdesk.services.wire import violation_out as violation_out
from collabdesk.services.wire import work_order_out as work_order_out

from . import fields as f


class Body(BaseModel):
    """Every request body: unknown fields are refused (a typo is an error, not a default)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RemedyIn(Body):
    type: RemedyType
    amount_cents: f.Cents | None = None
    note: f.ShortText | None = None

    def to_domain(self) -> Remedy:
        return Remedy(self.type, self.amount_cents, self.note)


class AccountIn(Body):
    name: f.Name
    role: Role
    store_id: f.Id | None = None
    phone: f.Phone | None = None
    email: f.Email | None = None
    login: f.Login | None = None
    password: f.Password | None = None
    language: Literal["zh", "en"] = Field(
        "zh", description="the language of the account's notifications")


class MyContactIn(Body):
    """Fields left out keep their value; `null` clears a phone number or an email."""

    phone: f.Phone | None = None
    email: f.Email | None = None
    language: Literal["zh", "en"] | None = None


class StaffPermissionIn(Body):
    work_orders: StrictBool


class StoreIn(Body):
    id: f.Id
    name: f.Name
    platform: StorePlatform


class OrderIn(Body):
    id: f.Id
    store_id: f.Id
    consumer_id: f.Id
    kind: OrderKind = OrderKind.STANDARD
    amount_cents: f.Cents
    paid_at: f.Instant


class WorkOrderIn(Body):
    order_id: f.Id
    category: Category
    claim: f.Text
    requested_remedy: RemedyIn | None = None


EvidenceIds = Annotated[list[f.Id], Field(max_length=50)]


class ContactIn(Body):
    channel: ContactChannel
    contacted_at: f.Instant
    outcome: ContactOutcome
    summary: f.OptionalText | None = None
    evidence_ids: EvidenceIds = Field(default_factory=list)


class ReplyIn(Body):
    option: ReplyOption
    statement: f.OptionalText | None = None
    agreement: RemedyIn | None = None
    evidence_ids: EvidenceIds = Field(default_factory=list)


class NoteIn(Body):
    text: f.Text
    evidence_ids: EvidenceIds = Field(default_factory=list)
    visibility: NoteVisibility = NoteVisibility.ALL


class ConsumerResponseIn(Body):
    accept: StrictBool
    statement: f.OptionalText | None = None


class VerificationIn(Body):
    outcome: VerificationOutcome
    rationale: f.Text


class JudgmentIn(Body):
    ruling: Ruling
    rationale: f.Text
    remedy: RemedyIn | None = None


class AppealIn(Body):
    statement: f.Text
    evidence_ids: EvidenceIds = Field(default_factory=list)


class AppealDecisionIn(Body):
    decision: AppealDecision
    rationale: f.Text


class SettlementIn(Body):
    amount_cents: f.Cents
    rationale: f.Text


class ViolationIn(Body):
    store_id: f.Id
    work_order_id: f.Id
    kind: ViolationKind
    severity: Severity
    rationale: f.Text
    evidence_ids: EvidenceIds = Field(default_factory=list)


class ViolationAppealIn(Body):
    statement: f.Text


class ViolationDecisionIn(Body):
    decision: ViolationDecision
    rationale: f.Text


class WithdrawIn(Body):
    """`{}`: withdrawing takes no fields."""


class AdvanceIn(Body):
    seconds: Annotated[StrictInt, Field(ge=0, le=bounds.MAX_ADVANCE_SECONDS)]


# ---- renderers ---------------------------------------------------------------------------

def contact_out(c: Contact) -> dict[str, Any]:
    return {"id": c.id, "work_order_id": c.work_order_id, "channel": str(c.channel),
            "contacted_at": iso_or_none(c.contacted_at), "outcome": str(c.outcome),
            "summary": c.summary, "evidence_ids": list(c.evidence_ids),
            "recorded_by": c.recorded_by, "recorded_at": iso_or_none(c.recorded_at)}


def note_out(n: Note) -> dict[str, Any]:
    return {"id": n.id, "work_order_id": n.work_order_id, "author_id": n.author_id,
            "author_role": str(n.author_role), "text": n.text, "visibility": n.visibility,
            "evidence_ids": list(n.evidence_ids), "created_at": iso_or_none(n.created_at)}


def event_out(e: ChainLink) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "actor_id": e.actor_id, "type": e.type,
            "data": json.loads(e.data_json), "prev_hash": e.prev_hash, "hash": e.hash,
            "visibility": e.visibility}


def delivery_out(d: Delivery) -> dict[str, Any]:
    return {"id": d.id, "recipient_id": d.recipient_id, "channel": d.channel,
            "kind": d.kind, "status": str(d.status), "reason": d.reason, "at": iso_or_none(d.at),
            "work_order_id": d.work_order_id, "attempt": d.attempt, "event_id": d.event_id,
            "destination": d.destination}


def inbox_out(i: InboxItem) -> dict[str, Any]:
    return {"id": i.id, "kind": str(i.kind), "work_order_id": i.work_order_id,
            "created_at": iso_or_none(i.created_at), "text": i.text, "read": i.read}


def evidence_out(e: EvidenceRecord) -> dict[str, Any]:
    return {"id": e.id, "sha256": e.sha256, "media_type": e.media_type, "size": e.size,
            "filename": e.filename, "uploaded_by": e.uploaded_by,
            "uploaded_at": iso_or_none(e.uploaded_at)}


def account_out(a: Account, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": a.id, "name": a.name, "role": str(a.role),
                           "store_id": a.store_id, "language": a.language}
    if token is not None:
        out["token"] = token
    return out


def store_out(s: Store) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "platform": str(s.platform)}


def order_out(o: Order) -> dict[str, Any]:
    return {"id": o.id, "store_id": o.store_id, "consumer_id": o.consumer_id,
            "kind": str(o.kind), "amount_cents": o.amount_cents, "paid_at": iso_or_none(o.paid_at)}


def points_out(p: PointsStatement) -> dict[str, Any]:
    return {"store_id": p.store_id, "year": p.year, "total": p.total, "entries": [
        {"id": e.id, "violation_id": e.violation_id, "points": e.points, "reason": e.reason,
         "at": iso_or_none(e.at)} for e in p.entries]}


class WebhookIn(Body):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    events: Annotated[list[Annotated[str, StringConstraints(max_length=64)]],
                      Field(min_length=1, max_length=10)]


class RedeliverIn(Body):
    event_id: f.Id


def webhook_out(h: Webhook, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": h.id, "store_id": h.store_id, "url": h.url, "events": list(h.events),
        "enabled": h.enabled, "created_at": iso_or_none(h.created_at),
        "failing_since": iso_or_none(h.failing_since), "last_error": h.last_error,
        "last_delivered_at": iso_or_none(h.last_delivered_at),
        "disabled_at": iso_or_none(h.disabled_at)}
    if secret is not None:
        out["secret"] = secret
    return out
