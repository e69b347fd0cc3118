"""The JSON shape of a work order and a violation, as the API answers with them and as
webhooks carry them (`data.work_order`), so a merchant's ERP parses one shape."""

from __future__ import annotations

from typing import Any

from collabdesk.domain.model import WorkOrder
from collabdesk.domain.values import Remedy, utc_iso
from collabdesk.domain.violations import Violation


def iso_or_none(value: Any) -> str | None:
    return utc_iso(value) if value is not None else None


def remedy_out(r: Remedy | None) -> dict[str, Any] | None:
    if r is None:
        return None
    out: dict[str, Any] = {"type": str(r.type)}
    if r.amount_cents is not None:
        out["amount_cents"] = r.amount_cents
    if r.note is not None:
        out["note"] = r.note
    return out


def work_order_out(wo: WorkOrder) -> dict[str, Any]:
    r, j, a = wo.reply, wo.judgment, wo.appeal
    return {
        "id": wo.id, "order_id": wo.order_id, "store_id": wo.store_id,
        "consumer_id": wo.consumer_id, "category": str(wo.category), "claim": wo.claim,
        "requested_remedy": remedy_out(wo.requested_remedy), "state": str(wo.state),
        "created_at": iso_or_none(wo.created_at), "due_at": iso_or_none(wo.due_at),
        "evidence_waived": wo.evidence_waived,
        "reply": None if r is None else {
            "option": str(r.option), "statement": r.statement,
            "agreement": remedy_out(r.agreement), "evidence_ids": list(r.evidence_ids),
            "replied_at": iso_or_none(r.replied_at), "replied_by": r.replied_by},
        "judgment": None if j is None else {
            "ruling": str(j.ruling), "rationale": j.rationale, "remedy": remedy_out(j.remedy),
            "judged_at": iso_or_none(j.judged_at), "judged_by": j.judged_by},
        "appeal": None if a is None else {
            "statement": a.statement, "appealed_at": iso_or_none(a.appealed_at),
            "decision": str(a.decision) if a.decision else None,
            "decided_at": iso_or_none(a.decided_at), "evidence_ids": list(a.evidence_ids),
            "rationale": a.rationale},
        "counts_as_dispute": wo.counts_as_dispute, "version": wo.version,
        # Beyond api.md (additions only):
        "order_kind": str(wo.order_kind),
        "verification": None if wo.verification is None else {
            "outcome": str(wo.verification.outcome),
            "rationale": wo.verification.rationale,
            "verified_at": iso_or_none(wo.verification.verified_at),
            "verified_by": wo.verification.verified_by},
        "consumer_response": None if wo.consumer_response is None else {
            "accept": wo.consumer_response.accept,
            "statement": wo.consumer_response.statement,
            "responded_at": iso_or_none(wo.consumer_response.responded_at)},
        "settlement": None if wo.settlement is None else {
            "amount_cents": wo.settlement.amount_cents,
            "rationale": wo.settlement.rationale,
            "settled_at": iso_or_none(wo.settlement.settled_at),
            "settled_by": wo.settlement.settled_by},
        "timed_out_at": iso_or_none(wo.timed_out_at), "closed_at": iso_or_none(wo.closed_at),
        "sla_overdue": wo.sla_overdue,
    }


def violation_out(v: Violation) -> dict[str, Any]:
    return {"id": v.id, "store_id": v.store_id, "work_order_id": v.work_order_id,
            "kind": str(v.kind), "severity": str(v.severity), "points": v.points,
            "state": str(v.state), "recorded_at": iso_or_none(v.recorded_at),
            "rationale": v.rationale, "evidence_ids": list(v.evidence_ids),
            "recorded_by": v.recorded_by, "appeal_statement": v.appeal_statement,
            "appealed_at": iso_or_none(v.appealed_at),
            "decision": str(v.decision) if v.decision else None,
            "decided_at": iso_or_none(v.decided_at)}
