"""Work order <-> row mapping. Nested parts (reply, judgment...) are JSON with ISO times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collabdesk.domain.audit import ALL, PLATFORM, ChainHead
from collabdesk.domain.model import (
    Appeal,
    ConsumerResponse,
    Judgment,
    Reply,
    Settlement,
    Verification,
    WorkOrder,
)
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import State
from collabdesk.domain.values import (
    AppealDecision,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    OrderKind,
    Remedy,
    Ruling,
    VerificationOutcome,
    utc_iso,
)

# The sort key of a work order without a deadline: after every real one (years end at 9998).
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ts(value: datetime | None) -> str | None:
    return utc_iso(value) if value else None


def _need(value: datetime | None) -> datetime:
    assert value is not None
    return value


def reply_to_json(r: Reply | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"option": str(r.option), "statement": r.statement,
            "agreement": r.agreement.to_dict() if r.agreement else None,
            "evidence_ids": list(r.evidence_ids), "replied_at": _ts(r.replied_at),
            "replied_by": r.replied_by}


def judgment_to_json(j: Judgment | None) -> dict[str, Any] | None:
    if j is None:
        return None
    return {"ruling": str(j.ruling), "rationale": j.rationale,
            "remedy": j.remedy.to_dict() if j.remedy else None,
            "judged_at": _ts(j.judged_at), "judged_by": j.judged_by}


def appeal_to_json(a: Appeal | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"statement": a.statement, "evidence_ids": list(a.evidence_ids),
            "appealed_at": _ts(a.appealed_at), "appealed_by": a.appealed_by,
            "decision": str(a.decision) if a.decision else None, "rationale": a.rationale,
            "decided_at": _ts(a.decided_at), "decided_by": a.decided_by}


def verification_to_json(v: Verification | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"outcome": str(v.outcome), "rationale": v.rationale,
            "verified_at": _ts(v.verified_at), "verified_by": v.verified_by}


def consumer_response_to_json(c: ConsumerResponse | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"accept": c.accept, "statement": c.statement,
            "responded_at": _ts(c.responded_at)}


def settlement_to_json(s: Settlement | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"amount_cents": s.amount_cents, "rationale": s.rationale,
            "settled_at": _ts(s.settled_at), "settled_by": s.settled_by}


def work_order_values(wo: WorkOrder) -> dict[str, Any]:
    """Every column of `work_orders` for this aggregate, except `version`."""
    return {
        "id": wo.id, "order_id": wo.order_id, "store_id": wo.store_id,
        "consumer_id": wo.consumer_id, "order_kind": str(wo.order_kind),
        "order_amount_cents": wo.order_amount_cents, "category": str(wo.category),
        "claim": wo.claim,
        "requested_remedy": wo.requested_remedy.to_dict() if wo.requested_remedy else None,
        "state": str(wo.state), "is_open": wo.is_open, "created_at": wo.created_at,
        "created_by": wo.created_by, "due_at": wo.due_at,
        "sort_due_at": wo.due_at or FAR_FUTURE,
        "state_entered_at": wo.state_entered_at, "evidence_waived": wo.evidence_waived,
        "reply": reply_to_json(wo.reply),
        "replied_at": wo.reply.replied_at if wo.reply else None,
        "judgment": judgment_to_json(wo.judgment),
        "judged_at": wo.judgment.judged_at if wo.judgment else None,
        "appeal": appeal_to_json(wo.appeal),
        "verification": verification_to_json(wo.verification),
        "consumer_response": consumer_response_to_json(wo.consumer_response),
        "settlement": settlement_to_json(wo.settlement),
        "counts_as_dispute": wo.counts_as_dispute, "timed_out_at": wo.timed_out_at,
        "escalated_at": wo.escalated_at, "closed_at": wo.closed_at,
        "sla_overdue": wo.sla_overdue,
        "chain_length": wo.chains[ALL].length, "chain_head": wo.chains[ALL].hash,
        "platform_chain_length": wo.chains[PLATFORM].length,
        "platform_chain_head": wo.chains[PLATFORM].hash,
    }


# Set when the work order is opened, never changed: left out of an update's SET clause, so
# the database neither re-checks foreign keys on the primary key (SQLite checks every
# child table when `id` is set, even to itself) nor rewrites the indexes on them.
IMMUTABLE = frozenset({"id", "order_id", "store_id", "consumer_id", "order_kind",
                       "order_amount_cents", "category", "claim", "requested_remedy",
                       "created_at", "created_by"})


def work_order_changes(wo: WorkOrder) -> dict[str, Any]:
    """The columns a change may have moved (all but `IMMUTABLE` and `version`)."""
    return {k: v for k, v in work_order_values(wo).items() if k not in IMMUTABLE}


def work_order_from_row(row: Any, contacts: list[Contact] | None = None) -> WorkOrder:
    m = row._mapping
    reply = appeal = judgment = verification = response = settlement = None
    if (r := m["reply"]) is not None:
        reply = Reply(ReplyOption(r["option"]), r["statement"], Remedy.from_dict(r["agreement"]),
                      tuple(r["evidence_ids"]), _need(_t(r["replied_at"])), r["replied_by"])
    if (j := m["judgment"]) is not None:
        judgment = Judgment(Ruling(j["ruling"]), j["rationale"], Remedy.from_dict(j["remedy"]),
                            _need(_t(j["judged_at"])), j["judged_by"])
    if (a := m["appeal"]) is not None:
        appeal = Appeal(a["statement"], tuple(a["evidence_ids"]), _need(_t(a["appealed_at"])),
                        a["appealed_by"],
                        AppealDecision(a["decision"]) if a["decision"] else None,
                        a["rationale"], _t(a["decided_at"]), a["decided_by"])
    if (v := m["verification"]) is not None:
        verification = Verification(VerificationOutcome(v["outcome"]), v["rationale"],
                                    _need(_t(v["verified_at"])), v["verified_by"])
    if (c := m["consumer_response"]) is not None:
        response = ConsumerResponse(c["accept"], c["statement"], _need(_t(c["responded_at"])))
    if (s := m["settlement"]) is not None:
        settlement = Settlement(s["amount_cents"], s["rationale"], _need(_t(s["settled_at"])),
                                s["settled_by"])
    return WorkOrder(
        id=m["id"], order_id=m["order_id"], store_id=m["store_id"],
        consumer_id=m["consumer_id"], order_kind=OrderKind(m["order_kind"]),
        order_amount_cents=m["order_amount_cents"], category=Category(m["category"]),
        claim=m["claim"], requested_remedy=Remedy.from_dict(m["requested_remedy"]),
        state=State(m["state"]), created_at=m["created_at"], created_by=m["created_by"],
        due_at=m["due_at"], state_entered_at=m["state_entered_at"],
        evidence_waived=m["evidence_waived"], reply=reply, judgment=judgment, appeal=appeal,
        verification=verification, consumer_response=response, settlement=settlement,
        timed_out_at=m["timed_out_at"], escalated_at=m["escalated_at"],
        closed_at=m["closed_at"], sla_overdue=m["sla_overdue"], version=m["version"],
        contacts=contacts if contacts is not None else [],
        chains={ALL: ChainHead(m["chain_length"], m["chain_head"]),
                PLATFORM: ChainHead(m["platform_chain_length"], m["platform_chain_head"])},
    )


def contact_from_row(row: Any) -> Contact:
    m = row._mapping
    return Contact(m["id"], m["work_order_id"], ContactChannel(m["channel"]),
                   m["contacted_at"], ContactOutcome(m["outcome"]), m["summary"],
                   tuple(m["evidence_ids"]), m["recorded_by"], m["recorded_at"])
