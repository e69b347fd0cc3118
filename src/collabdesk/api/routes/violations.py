"""Violations, their appeals, and the points ledger; store metrics."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, status

from collabdesk.domain.values import utc_iso
from collabdesk.services import metrics as metrics_svc
from collabdesk.services import violations as svc

from .. import schemas as s
from ..deps import Caller, Ctx

router = APIRouter(tags=["violations, points, metrics"])


@router.post("/v1/violations", status_code=status.HTTP_201_CREATED)
def record(body: s.ViolationIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    violation = svc.record_violation(
        ctx, caller, store_id=body.store_id, work_order_id=body.work_order_id, kind=body.kind,
        severity=body.severity, rationale=body.rationale,
        evidence_ids=tuple(dict.fromkeys(body.evidence_ids)))
    return s.violation_out(violation)


@router.get("/v1/violations/{violation_id}")
def get(violation_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return s.violation_out(svc.get_violation(ctx, caller, violation_id))


@router.post("/v1/violations/{violation_id}/appeal")
def appeal(violation_id: str, body: s.ViolationAppealIn, ctx: Ctx,
           caller: Caller) -> dict[str, Any]:
    return s.violation_out(svc.appeal_violation(ctx, caller, violation_id, body.statement))


@router.post("/v1/violations/{violation_id}/decision")
def decide(violation_id: str, body: s.ViolationDecisionIn, ctx: Ctx,
           caller: Caller) -> dict[str, Any]:
    return s.violation_out(svc.decide_violation(ctx, caller, violation_id, body.decision,
                                                body.rationale))


@router.get("/v1/stores/{store_id}/points")
def points(store_id: str, ctx: Ctx, caller: Caller, year: int | None = None) -> dict[str, Any]:
    return s.points_out(svc.points(ctx, caller, store_id, year or ctx.clock.now().year))


@router.get("/v1/stores/{store_id}/metrics")
def store_metrics(store_id: str, ctx: Ctx, caller: Caller,
                  as_of: date | None = None) -> dict[str, Any]:
    report = metrics_svc.store_metrics(ctx, caller, store_id, as_of)
    f = report.figures
    return {
        "store_id": report.store.id, "platform": str(report.store.platform),
        "metric": f.metric, "window_days": report.window_days,
        "window_start": utc_iso(report.window.start), "window_end": utc_iso(report.window.end),
        "dispute_count": f.dispute_count, "paid_orders": f.paid_orders,
        "dispute_rate": f.dispute_rate, "work_orders": f.work_orders,
        "replied_on_time": f.replied_on_time, "on_time_reply_rate": f.on_time_reply_rate,
        "timeouts": f.timeouts, "median_reply_seconds": f.median_reply_seconds,
        "agreement_rate": f.agreement_rate, "intervention_rate": f.intervention_rate,
    }
