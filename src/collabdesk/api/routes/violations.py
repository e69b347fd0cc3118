"""Violations, their appeals, and the points ledger; store metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from collabdesk.domain.metrics import metric_name
from collabdesk.domain.values import utc_iso
from collabdesk.services import metrics as metrics_svc
from collabdesk.services import violations as svc

from .. import models as m
from .. import schemas as s
from ..deps import Caller, Ctx
from ..fields import OptionalDay, OptionalYear, PathId
from ..openapi import problems

router = APIRouter(tags=["violations, points, metrics"], route_class=m.RenderedRoute)

_UNSEEN = "no such violation, or another store's"
_RATIONALE = "`rationale` is blank"
_NO_STORE = "no such store, or another store's (to a merchant)"


@router.post("/v1/violations", status_code=status.HTTP_201_CREATED, response_model=m.Violation,
             summary="Record a violation",
             responses=problems(
                 not_found="the work order does not exist",
                 validation_error="the work order is not the store's; " + _RATIONALE
                                  + "; `evidence_ids` names evidence that is unknown, or "
                                    "that is neither the caller's nor on the work order "
                                    "for every party",
                 forbidden="the caller is neither a verifier nor an adjudicator"))
def record(body: s.ViolationIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Record a violation against a store for false evidence on a work order (rules.md §9).
    **A verifier or an adjudicator.**

    It books its points to the store's ledger for the current year (12 for `general`, 48
    for `serious`, by default) and is recorded in the work order's history; the store may
    appeal it within 7 days. Cited evidence is shown to the store.
    """
    violation = svc.record_violation(
        ctx, caller, store_id=body.store_id, work_order_id=body.work_order_id, kind=body.kind,
        severity=body.severity, rationale=body.rationale,
        evidence_ids=tuple(dict.fromkeys(body.evidence_ids)))
    return s.violation_out(violation)


@router.get("/v1/violations/{violation_id}", response_model=m.Violation,
            summary="Get a violation", responses=problems(not_found=_UNSEEN))
def get(violation_id: PathId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """A violation (an addition to api.md). **The store's merchants, the platform staff and
    admin**; anyone else gets 404."""
    return s.violation_out(svc.get_violation(ctx, caller, violation_id))


@router.post("/v1/violations/{violation_id}/appeal", response_model=m.Violation,
             summary="Appeal a violation",
             responses=problems(
                 not_found=_UNSEEN, forbidden="the caller is not the store's owner",
                 invalid_transition="the violation is not `in_force`, or was appealed "
                                    "already",
                 validation_error="`statement` is blank",
                 appeal_window_closed="7 days have passed since it was recorded"))
def appeal(violation_id: PathId, body: s.ViolationAppealIn, ctx: Ctx,
           caller: Caller) -> dict[str, Any]:
    """The store's appeal. **The store's owner**, once, within 7 days of the recording: →
    `under_appeal`, for a supervisor to decide."""
    return s.violation_out(svc.appeal_violation(ctx, caller, violation_id, body.statement))


@router.post("/v1/violations/{violation_id}/decision", response_model=m.Violation,
             summary="Decide a violation's appeal",
             responses=problems(
                 not_found=_UNSEEN, forbidden="the caller is not a supervisor",
                 invalid_transition="the violation is not `under_appeal`",
                 validation_error=_RATIONALE))
def decide(violation_id: PathId, body: s.ViolationDecisionIn, ctx: Ctx,
           caller: Caller) -> dict[str, Any]:
    """The decision on the store's appeal. **A supervisor**, while the violation is
    `under_appeal`: `upheld` → `in_force`; `revoked` → `revoked`, and the ledger gets a
    line giving the points back (in the year they were booked to)."""
    return s.violation_out(svc.decide_violation(ctx, caller, violation_id, body.decision,
                                                body.rationale))


@router.get("/v1/stores/{store_id}/points", response_model=m.PointsStatement,
            summary="A store's points ledger",
            responses=problems(
                not_found=_NO_STORE,
                forbidden="the caller is neither the store's nor the platform's"))
def points(store_id: PathId, ctx: Ctx, caller: Caller, year: OptionalYear = None) -> dict[str, Any]:
    """The store's points ledger of a calendar year (UTC; default: this year) and its
    total. **The store's merchants, the platform staff and admin.**"""
    return s.points_out(svc.points(ctx, caller, store_id, year or ctx.clock.now().year))


@router.get("/v1/stores/{store_id}/metrics", response_model=m.StoreMetrics,
            summary="A store's metrics",
            responses=problems(
                not_found=_NO_STORE,
                forbidden="the caller is neither the store's nor the platform's"))
def store_metrics(store_id: PathId, ctx: Ctx, caller: Caller,
                  as_of: OptionalDay = None) -> dict[str, Any]:
    """The store's figures over the 30 days (by default) ending on `as_of` (default:
    today, UTC): its dispute rate by its platform's metric (taobao: `dispute_refund_rate`,
    tmall: `platform_dispute_rate`), on-time replies, timeouts, agreement and intervention
    rates (rules.md §8). **The store's merchants, the platform staff and admin.**"""
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


@router.get("/v1/stores/{store_id}/metrics/daily", response_model=m.DailyMetrics,
            summary="A store's metrics day by day",
            responses=problems(
                not_found=_NO_STORE,
                forbidden="the caller is neither the store's nor the platform's",
                validation_error="`from` is after `to`, or they span more than 366 days"))
def daily_metrics(store_id: PathId, ctx: Ctx, caller: Caller,
                  from_: Annotated[OptionalDay, Query(
                      alias="from", description="the first day (UTC); default: 29 days "
                                                "before `to`")] = None,
                  to: Annotated[OptionalDay, Query(
                      description="the last day (UTC); default: today")] = None,
                  ) -> dict[str, Any]:
    """The store's figures of each UTC day from `from` to `to`, both included (default:
    `to` today, `from` 29 days before it; at most 366 days): the work orders opened that
    day (on-time replies, timeouts, median reply time, agreement and intervention rates),
    the disputes ruled that day and the orders paid that day, with their dispute rate
    (rules.md §8). Every day is listed, with zeros and null rates when nothing happened.
    **The store's merchants, the platform staff and admin.**"""
    report = metrics_svc.daily_metrics(ctx, caller, store_id, from_, to)
    return {
        "store_id": report.store.id, "platform": str(report.store.platform),
        "metric": metric_name(report.store.platform),
        "from": report.first.isoformat(), "to": report.last.isoformat(),
        "days": [{
            "day": day.isoformat(), "work_orders": f.work_orders,
            "replied_on_time": f.replied_on_time, "on_time_reply_rate": f.on_time_reply_rate,
            "timeouts": f.timeouts, "median_reply_seconds": f.median_reply_seconds,
            "agreement_rate": f.agreement_rate, "intervention_rate": f.intervention_rate,
            "dispute_count": f.dispute_count, "paid_orders": f.paid_orders,
            "dispute_rate": f.dispute_rate,
        } for day, f in report.days],
    }
