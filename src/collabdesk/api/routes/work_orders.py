"""Work orders: opening, store actions, consumer and platform decisions, history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import AwareDatetime

from collabdesk.domain.model import WorkOrder
from collabdesk.domain.states import State
from collabdesk.services import work_orders as svc

from .. import schemas as s
from ..deps import (
    Caller,
    Ctx,
    IfMatch,
    Limit,
    due_cursor,
    offset_cursor,
    offset_page,
    page,
)

router = APIRouter(prefix="/v1/work-orders", tags=["work orders"])
ONE = "/{work_order_id}"


def _with_etag(response: Response, wo: WorkOrder) -> dict[str, Any]:
    response.headers["ETag"] = f'"{wo.version}"'
    return s.work_order_out(wo)


def _ids(ids: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


@router.post("", status_code=status.HTTP_201_CREATED)
def open_work_order(body: s.WorkOrderIn, response: Response, ctx: Ctx,
                    caller: Caller) -> dict[str, Any]:
    wo = svc.open_work_order(
        ctx, caller, order_id=body.order_id, category=body.category, claim=body.claim,
        requested_remedy=body.requested_remedy.to_domain() if body.requested_remedy else None)
    response.headers["Location"] = f"/v1/work-orders/{wo.id}"
    return _with_etag(response, wo)


@router.get(ONE)
def get_work_order(work_order_id: str, response: Response, ctx: Ctx,
                   caller: Caller) -> dict[str, Any]:
    return _with_etag(response, svc.get_work_order(ctx, caller, work_order_id))


@router.get("")
def list_work_orders(ctx: Ctx, caller: Caller, state: State | None = None,
                     store_id: str | None = None, due_before: AwareDatetime | None = None,
                     overdue: bool | None = None, limit: Limit = 50,
                     cursor: str | None = None) -> dict[str, Any]:
    """`overdue=true` (an addition to api.md): cases past an internal SLA, for supervisors."""
    after = due_cursor(cursor)
    filters = svc.ListFilters(state, store_id, due_before, overdue)
    items = svc.list_work_orders(ctx, caller, filters, after, limit + 1)
    return page(items, limit, lambda wo: [s.iso_or_none(wo.due_at), wo.id], s.work_order_out)


@router.post(ONE + "/contacts", status_code=status.HTTP_201_CREATED)
def log_contact(work_order_id: str, body: s.ContactIn, ctx: Ctx, caller: Caller,
                if_match: IfMatch) -> dict[str, Any]:
    contact = svc.log_contact(
        ctx, caller, work_order_id, channel=body.channel, contacted_at=body.contacted_at,
        outcome=body.outcome, summary=body.summary, evidence_ids=_ids(body.evidence_ids),
        expected_version=if_match)
    return s.contact_out(contact)


@router.get(ONE + "/contacts")
def list_contacts(work_order_id: str, ctx: Ctx, caller: Caller, limit: Limit = 50,
                  cursor: str | None = None) -> dict[str, Any]:
    return offset_page(svc.list_contacts(ctx, caller, work_order_id), limit, cursor,
                       s.contact_out)


@router.post(ONE + "/reply")
def reply(work_order_id: str, body: s.ReplyIn, response: Response, ctx: Ctx, caller: Caller,
          if_match: IfMatch) -> dict[str, Any]:
    wo = svc.reply(ctx, caller, work_order_id, option=body.option, statement=body.statement,
                   agreement=body.agreement.to_domain() if body.agreement else None,
                   evidence_ids=_ids(body.evidence_ids), expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/notes", status_code=status.HTTP_201_CREATED)
def add_note(work_order_id: str, body: s.NoteIn, ctx: Ctx, caller: Caller,
             if_match: IfMatch) -> dict[str, Any]:
    note = svc.add_note(ctx, caller, work_order_id, text=body.text,
                        visibility=body.visibility, evidence_ids=_ids(body.evidence_ids),
                        expected_version=if_match)
    return s.note_out(note)


@router.get(ONE + "/notes")
def list_notes(work_order_id: str, ctx: Ctx, caller: Caller, limit: Limit = 50,
               cursor: str | None = None) -> dict[str, Any]:
    return offset_page(svc.list_notes(ctx, caller, work_order_id), limit, cursor, s.note_out)


@router.post(ONE + "/consumer-response")
def consumer_response(work_order_id: str, body: s.ConsumerResponseIn, response: Response,
                      ctx: Ctx, caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    wo = svc.respond_as_consumer(ctx, caller, work_order_id, accept=body.accept,
                                 statement=body.statement, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/verification")
def verification(work_order_id: str, body: s.VerificationIn, response: Response, ctx: Ctx,
                 caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    wo = svc.verify(ctx, caller, work_order_id, outcome=body.outcome,
                    rationale=body.rationale, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/judgment")
def judgment(work_order_id: str, body: s.JudgmentIn, response: Response, ctx: Ctx,
             caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    wo = svc.judge(ctx, caller, work_order_id, ruling=body.ruling, rationale=body.rationale,
                   remedy=body.remedy.to_domain() if body.remedy else None,
                   expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/appeal")
def appeal(work_order_id: str, body: s.AppealIn, response: Response, ctx: Ctx,
           caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    wo = svc.appeal(ctx, caller, work_order_id, statement=body.statement,
                    evidence_ids=_ids(body.evidence_ids), expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/appeal-decision")
def appeal_decision(work_order_id: str, body: s.AppealDecisionIn, response: Response,
                    ctx: Ctx, caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    wo = svc.decide_appeal(ctx, caller, work_order_id, decision=body.decision,
                           rationale=body.rationale, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/settlement")
def settlement(work_order_id: str, body: s.SettlementIn, response: Response, ctx: Ctx,
               caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    wo = svc.settle(ctx, caller, work_order_id, amount_cents=body.amount_cents,
                    rationale=body.rationale, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/withdraw")
def withdraw(work_order_id: str, response: Response, ctx: Ctx, caller: Caller,
             if_match: IfMatch) -> dict[str, Any]:
    return _with_etag(response, svc.withdraw(ctx, caller, work_order_id, if_match))


@router.get(ONE + "/events")
def events(work_order_id: str, ctx: Ctx, caller: Caller, limit: Limit = 50,
           cursor: str | None = None) -> dict[str, Any]:
    after = offset_cursor(cursor)
    links = svc.list_events(ctx, caller, work_order_id, after, limit + 1)
    return page(links, limit, lambda e: e.seq, s.event_out)


@router.get(ONE + "/deliveries")
def deliveries(work_order_id: str, ctx: Ctx, caller: Caller, limit: Limit = 50,
               cursor: str | None = None) -> dict[str, Any]:
    return offset_page(svc.list_deliveries(ctx, caller, work_order_id), limit, cursor,
                       s.delivery_out)

