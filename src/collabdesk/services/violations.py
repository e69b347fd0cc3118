"""Violations for forged evidence, their appeals, and the points ledger (rules.md §9)."""

from __future__ import annotations

from dataclasses import dataclass

from collabdesk.domain import metrics
from collabdesk.domain.audit import ALL
from collabdesk.domain.errors import Forbidden, NotFound, ValidationFailed
from collabdesk.domain.states import MERCHANT_ROLES, PLATFORM_ROLES, Role
from collabdesk.domain.values import Actor
from collabdesk.domain.violations import (
    LedgerEntry,
    Severity,
    Violation,
    ViolationDecision,
    ViolationKind,
)

from .access import can_see_store, visible_work_order
from .context import ServiceContext, new_id
from .ports import UnitOfWork
from .work_orders import commit_change


def record_violation(ctx: ServiceContext, actor: Actor, *, store_id: str, work_order_id: str,
                     kind: ViolationKind, severity: Severity, rationale: str,
                     evidence_ids: tuple[str, ...]) -> Violation:
    def run(uow: UnitOfWork) -> Violation:
        now = ctx.clock.now()
        wo = visible_work_order(uow, actor, work_order_id)
        if wo.store_id != store_id:
            raise ValidationFailed(f"work order {work_order_id} is not store {store_id}'s")
        # The store is shown the evidence against it, so only evidence every party of
        # the work order may see (or the recorder's own, attached below) can be cited.
        uploaders = {r.id: r.uploaded_by for r in uow.evidence.get_many(list(evidence_ids))}
        if unknown := [e for e in evidence_ids if e not in uploaders or not (
                uploaders[e] == actor.id or (wo.id, ALL) in uow.evidence.attached_to(e))]:
            raise ValidationFailed(f"unknown evidence ids: {', '.join(unknown)}")
        violation = Violation.record(
            violation_id=new_id("vio"), store_id=store_id, work_order_id=work_order_id,
            kind=kind, severity=severity, rationale=rationale, evidence_ids=evidence_ids,
            actor=actor, now=now, policy=ctx.policy)
        uow.violations.add(violation)
        uow.violations.append_ledger(violation.ledger_entry(new_id("pts")))
        if evidence_ids:
            uow.evidence.attach(list(evidence_ids), wo.id, now, ALL)
        before = metrics.facts_of(wo)
        wo.record_violation(violation.id, str(severity), violation.points, actor, now)
        commit_change(ctx, uow, wo, before, now)
        return violation
    return ctx.write(run)


def _visible(uow: UnitOfWork, actor: Actor, violation_id: str) -> Violation:
    violation = uow.violations.get(violation_id)
    if violation is None or not _may_see_store_records(actor, violation.store_id):
        raise NotFound(f"violation {violation_id} not found")
    return violation


def _may_see_store_records(actor: Actor, store_id: str) -> bool:
    if actor.role in MERCHANT_ROLES:
        return actor.store_id == store_id
    return actor.role in PLATFORM_ROLES or actor.role is Role.ADMIN


def get_violation(ctx: ServiceContext, actor: Actor, violation_id: str) -> Violation:
    return ctx.read(lambda uow: _visible(uow, actor, violation_id))


def appeal_violation(ctx: ServiceContext, actor: Actor, violation_id: str,
                     statement: str) -> Violation:
    def run(uow: UnitOfWork) -> Violation:
        violation = _visible(uow, actor, violation_id)
        violation.appeal(statement, actor, ctx.clock.now(), ctx.policy)
        uow.violations.save(violation)
        return violation
    return ctx.write(run)


def decide_violation(ctx: ServiceContext, actor: Actor, violation_id: str,
                     decision: ViolationDecision, rationale: str) -> Violation:
    def run(uow: UnitOfWork) -> Violation:
        violation = _visible(uow, actor, violation_id)
        refund = violation.decide(decision, rationale, actor, ctx.clock.now(), new_id("pts"))
        uow.violations.save(violation)
        if refund is not None:
            uow.violations.append_ledger(refund)
        return violation
    return ctx.write(run)


@dataclass(frozen=True)
class PointsStatement:
    store_id: str
    year: int
    total: int
    entries: list[LedgerEntry]


def points(ctx: ServiceContext, actor: Actor, store_id: str, year: int) -> PointsStatement:
    def run(uow: UnitOfWork) -> PointsStatement:
        if uow.stores.get(store_id) is None or not can_see_store(actor, store_id):
            raise NotFound(f"store {store_id} not found")
        if actor.role not in MERCHANT_ROLES | PLATFORM_ROLES | {Role.ADMIN}:
            raise Forbidden("points are shown to the store and the platform")
        entries = uow.violations.ledger(store_id, year)
        return PointsStatement(store_id, year, sum(e.points for e in entries), entries)
    return ctx.read(run)


