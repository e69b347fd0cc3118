"""Work orders: opening, store actions, consumer and platform decisions, history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from collabdesk.domain.audit import VISIBILITIES
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.states import State
from collabdesk.services import work_orders as svc

from .. import models as m
from .. import schemas as s
from ..deps import (
    Caller,
    Ctx,
    Cursor,
    IfMatch,
    Limit,
    due_cursor,
    offset_page,
    page,
    seq_pair_cursor,
)
from ..fields import Instant, PathId, QueryId
from ..openapi import LOCATION, problems

router = APIRouter(prefix="/v1/work-orders", tags=["work orders"], route_class=m.RenderedRoute)
ONE = "/{work_order_id}"

_UNSEEN = "the work order does not exist, or the caller may not see it"
_STALE = "`If-Match` names another version than the current one"
_EVIDENCE = ("`evidence_ids` names evidence that is unknown, or that the caller neither "
             "uploaded nor may see on this work order")
_CLOSED = "the reply deadline (`due_at`) has passed"
_RATIONALE = "`rationale` is blank"
_CURSOR = "a `cursor` this server did not issue"


def _with_etag(response: Response, wo: WorkOrder) -> dict[str, Any]:
    response.headers["ETag"] = f'"{wo.version}"'
    return s.work_order_out(wo)


def _ids(ids: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=m.WorkOrder,
             summary="Open a work order",
             responses={201: {"headers": {"Location": LOCATION}}, **problems(
                 not_found="the order does not exist, or is not the consumer's",
                 forbidden="the caller is neither a consumer nor triage",
                 duplicate_open_work_order="the order already has an open work order",
                 validation_error="`claim` is blank; `requested_remedy` lacks the amount "
                                  "its type needs, or asks for more than the order's "
                                  "amount")})
def open_work_order(body: s.WorkOrderIn, response: Response, ctx: Ctx,
                    caller: Caller) -> dict[str, Any]:
    """Ask the platform for help with an order. **A consumer (on their own order) or
    triage (on a consumer's behalf).**

    A standard order's work order starts `awaiting_merchant`: the store must contact the
    consumer and reply before `due_at`, 24 hours after opening by default (reminders come
    before it; at the deadline the case goes to adjudication with the store's evidence
    waived). A worry-free order's work order starts `worry_free`, has no `due_at`, and is
    settled by triage. An order has at most one open work order.
    """
    wo = svc.open_work_order(
        ctx, caller, order_id=body.order_id, category=body.category, claim=body.claim,
        requested_remedy=body.requested_remedy.to_domain() if body.requested_remedy else None)
    response.headers["Location"] = f"/v1/work-orders/{wo.id}"
    return _with_etag(response, wo)


@router.get(ONE, response_model=m.WorkOrder, summary="Get a work order",
            responses=problems(not_found=_UNSEEN))
def get_work_order(work_order_id: PathId, response: Response, ctx: Ctx,
                   caller: Caller) -> dict[str, Any]:
    """A work order, with its `ETag`. To its consumer, to the store's owner and the agents
    holding the work-order permission, and to the platform and admin; anyone else gets
    404."""
    return _with_etag(response, svc.get_work_order(ctx, caller, work_order_id))


@router.get("", response_model=m.WorkOrderPage, summary="List work orders",
            responses=problems(validation_error=_CURSOR))
def list_work_orders(ctx: Ctx, caller: Caller, state: State | None = None,
                     store_id: QueryId = None, due_before: Instant | None = None,
                     overdue: bool | None = None, limit: Limit = 50,
                     cursor: Cursor = None) -> dict[str, Any]:
    """The work orders the caller may see, soonest `due_at` first (worry-free ones, without
    a deadline, last): a consumer's own, the store's to its staff who handle work orders,
    all of them to the platform and admin, none to integration accounts.

    Filters: `state`, `store_id`, `due_before` (a time with an offset) and `overdue` (an
    addition to api.md): `true` lists the cases past an internal SLA (verification 24 h,
    adjudication 48 h), for supervisors. Pages hold up to `limit` items; pass
    `next_cursor` back as `cursor` for the next one.
    """
    after = due_cursor(cursor)
    filters = svc.ListFilters(state, store_id, due_before, overdue)
    items = svc.list_work_orders(ctx, caller, filters, after, limit + 1)
    return page(items, limit, lambda wo: [s.iso_or_none(wo.due_at), wo.id], s.work_order_out)


@router.post(ONE + "/contacts", status_code=status.HTTP_201_CREATED,
             response_model=m.Contact, summary="Log a contact with the consumer",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE, validation_error=_EVIDENCE,
                 forbidden="the caller is not the store's staff",
                 reply_window_closed=_CLOSED,
                 invalid_transition="the work order is not `awaiting_merchant`",
                 contact_before_work_order="`contacted_at` is before the work order was "
                                           "created",
                 contact_in_future="`contacted_at` is later than now"))
def log_contact(work_order_id: PathId, body: s.ContactIn, ctx: Ctx, caller: Caller,
                if_match: IfMatch) -> dict[str, Any]:
    """Record that the store contacted, or tried to contact, the consumer. **The store's
    owner, or an agent holding the work-order permission**, while the work order is
    `awaiting_merchant` and before `due_at`.

    Contacts are what a reply stands on: `resolved_agreed` and `unresolved_no_agreement`
    need a `reached` contact; `unresolved_unreachable` needs at least 2 attempts, all
    `unreachable`, each with evidence. `contacted_at` may be neither before the work order
    nor in the future. The work order's `version` moves.
    """
    contact = svc.log_contact(
        ctx, caller, work_order_id, channel=body.channel, contacted_at=body.contacted_at,
        outcome=body.outcome, summary=body.summary, evidence_ids=_ids(body.evidence_ids),
        expected_version=if_match)
    return s.contact_out(contact)


@router.get(ONE + "/contacts", response_model=m.ContactPage, summary="List contacts",
            responses=problems(not_found=_UNSEEN, validation_error=_CURSOR))
def list_contacts(work_order_id: PathId, ctx: Ctx, caller: Caller, limit: Limit = 50,
                  cursor: Cursor = None) -> dict[str, Any]:
    """The contacts the store logged, oldest first. To whoever may see the work order."""
    return offset_page(svc.list_contacts(ctx, caller, work_order_id), limit, cursor,
                       s.contact_out)


@router.post(ONE + "/reply", response_model=m.WorkOrder, summary="Reply as the store",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 validation_error=_EVIDENCE + "; `agreement` lacks the amount its type "
                                              "needs, or exceeds the order's amount",
                 forbidden="the caller is not the store's staff",
                 reply_window_closed=_CLOSED,
                 invalid_transition="the work order is not `awaiting_merchant` (the store "
                                    "replies once)",
                 reply_requirements_not_met="the option's requirements are not met; the "
                                            "detail lists what is missing"))
def reply(work_order_id: PathId, body: s.ReplyIn, response: Response, ctx: Ctx, caller: Caller,
          if_match: IfMatch) -> dict[str, Any]:
    """The store's one reply, before `due_at`. **The store's owner, or an agent holding
    the work-order permission.**

    - `resolved_agreed` (a `reached` contact and the `agreement`): → `awaiting_consumer`,
      for the consumer to accept or reject within 48 hours (silence accepts);
    - `unresolved_no_agreement` (a `reached` contact and a `statement`): →
      `in_adjudication`;
    - `unresolved_unreachable` (at least 2 contact attempts, all `unreachable`, each with
      evidence): → `awaiting_verification`;
    - `not_related` (a `statement`): → `awaiting_verification`.
    """
    wo = svc.reply(ctx, caller, work_order_id, option=body.option, statement=body.statement,
                   agreement=body.agreement.to_domain() if body.agreement else None,
                   evidence_ids=_ids(body.evidence_ids), expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/notes", status_code=status.HTTP_201_CREATED, response_model=m.Note,
             summary="Add a note",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 validation_error="`text` is blank; " + _EVIDENCE,
                 forbidden="the caller's role adds no notes (admin, integration)",
                 reply_window_closed="the store adds notes only before `due_at`",
                 invalid_transition="the work order is closed (or, for the store, no "
                                    "longer `awaiting_merchant`)"))
def add_note(work_order_id: PathId, body: s.NoteIn, ctx: Ctx, caller: Caller,
             if_match: IfMatch) -> dict[str, Any]:
    """Add a note to an open work order, optionally citing evidence. **The consumer and the
    platform staff while the work order is open; the store's staff while it is
    `awaiting_merchant` and before `due_at`.**

    A `platform` note is shown only to the platform staff and its author, and the evidence
    it cites stays the platform's; an `all` note moves the work order's `version`.
    """
    note = svc.add_note(ctx, caller, work_order_id, text=body.text,
                        visibility=body.visibility, evidence_ids=_ids(body.evidence_ids),
                        expected_version=if_match)
    return s.note_out(note)


@router.get(ONE + "/notes", response_model=m.NotePage, summary="List notes",
            responses=problems(not_found=_UNSEEN, validation_error=_CURSOR))
def list_notes(work_order_id: PathId, ctx: Ctx, caller: Caller, limit: Limit = 50,
               cursor: Cursor = None) -> dict[str, Any]:
    """The notes, oldest first. To whoever may see the work order; `platform` notes only to
    the platform staff, admin and their author."""
    return offset_page(svc.list_notes(ctx, caller, work_order_id), limit, cursor, s.note_out)


@router.post(ONE + "/consumer-response", response_model=m.WorkOrder,
             summary="Accept or reject the store's agreement",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 forbidden="the caller is not the consumer",
                 invalid_transition="the work order is not `awaiting_consumer`"))
def consumer_response(work_order_id: PathId, body: s.ConsumerResponseIn, response: Response,
                      ctx: Ctx, caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    """The consumer's answer to a `resolved_agreed` reply. **The consumer only**, while the
    work order is `awaiting_consumer`: `accept: true` → `resolved`, `false` →
    `in_adjudication`. Without an answer within 48 hours the work order is resolved."""
    wo = svc.respond_as_consumer(ctx, caller, work_order_id, accept=body.accept,
                                 statement=body.statement, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/verification", response_model=m.WorkOrder,
             summary="Verify the store's reply",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 forbidden="the caller is not a verifier",
                 invalid_transition="the work order is not `awaiting_verification`, or the "
                                    "outcome does not fit the reply's option",
                 validation_error=_RATIONALE))
def verification(work_order_id: PathId, body: s.VerificationIn, response: Response, ctx: Ctx,
                 caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    """The platform's check of an `unresolved_unreachable` or `not_related` reply. **A
    verifier**, while the work order is `awaiting_verification`.

    For `unresolved_unreachable`: `contact_verified` → `in_adjudication`;
    `contact_rejected` → `in_adjudication` with the store's evidence waived. For
    `not_related`: `unrelated_confirmed` → `dismissed`; `unrelated_rejected` →
    `in_adjudication`.
    """
    wo = svc.verify(ctx, caller, work_order_id, outcome=body.outcome,
                    rationale=body.rationale, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/judgment", response_model=m.WorkOrder, summary="Rule on the dispute",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 forbidden="the caller is not an adjudicator",
                 invalid_transition="the work order is not `in_adjudication`",
                 validation_error=_RATIONALE + "; a `for_consumer` ruling without a "
                                               "`remedy`, or one whose amount is missing "
                                               "or exceeds the order's"))
def judgment(work_order_id: PathId, body: s.JudgmentIn, response: Response, ctx: Ctx,
             caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    """The platform's ruling. **An adjudicator**, while the work order is
    `in_adjudication`: → `judged`. A `for_consumer` ruling names the `remedy` and counts
    as a dispute against the store (unless the store's appeal overturns it)."""
    wo = svc.judge(ctx, caller, work_order_id, ruling=body.ruling, rationale=body.rationale,
                   remedy=body.remedy.to_domain() if body.remedy else None,
                   expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/appeal", response_model=m.WorkOrder, summary="Appeal the ruling",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 validation_error="`statement` is blank; " + _EVIDENCE,
                 forbidden="the caller is not the store's owner",
                 invalid_transition="the work order is not `judged`, the ruling is not "
                                    "`for_consumer`, or it was appealed already",
                 appeal_window_closed="7 days have passed since the ruling",
                 duplicate_open_work_order="the consumer has opened another work order on "
                                           "the order since"))
def appeal(work_order_id: PathId, body: s.AppealIn, response: Response, ctx: Ctx,
           caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    """The store's appeal of a `for_consumer` ruling. **The store's owner**, once, within 7
    days of the ruling: → `under_appeal` (the work order is open again)."""
    wo = svc.appeal(ctx, caller, work_order_id, statement=body.statement,
                    evidence_ids=_ids(body.evidence_ids), expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/appeal-decision", response_model=m.WorkOrder,
             summary="Decide the store's appeal",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 forbidden="the caller is not a supervisor",
                 invalid_transition="the work order is not `under_appeal`",
                 validation_error=_RATIONALE))
def appeal_decision(work_order_id: PathId, body: s.AppealDecisionIn, response: Response,
                    ctx: Ctx, caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    """The decision on the store's appeal. **A supervisor**, while the work order is
    `under_appeal`: → `judged` again; `overturned` means the ruling no longer counts as a
    dispute against the store."""
    wo = svc.decide_appeal(ctx, caller, work_order_id, decision=body.decision,
                           rationale=body.rationale, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/settlement", response_model=m.WorkOrder,
             summary="Settle a worry-free work order",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 forbidden="the caller is not triage",
                 invalid_transition="the work order is not `worry_free`",
                 validation_error=_RATIONALE + "; `amount_cents` is 0 or exceeds the "
                                               "order's amount"))
def settlement(work_order_id: PathId, body: s.SettlementIn, response: Response, ctx: Ctx,
               caller: Caller, if_match: IfMatch) -> dict[str, Any]:
    """The platform pays out a worry-free (无忧购) work order. **Triage**, while the work
    order is `worry_free`: → `settled`, for 1 cent up to the order's amount."""
    wo = svc.settle(ctx, caller, work_order_id, amount_cents=body.amount_cents,
                    rationale=body.rationale, expected_version=if_match)
    return _with_etag(response, wo)


@router.post(ONE + "/withdraw", response_model=m.WorkOrder, summary="Withdraw a work order",
             responses=problems(
                 not_found=_UNSEEN, version_conflict=_STALE,
                 forbidden="the caller is not the consumer",
                 invalid_transition="the work order is closed"))
def withdraw(work_order_id: PathId, response: Response, ctx: Ctx, caller: Caller,
             if_match: IfMatch, body: s.WithdrawIn | None = None) -> dict[str, Any]:
    """The consumer takes their request back. **The consumer only**, while the work order
    is open: → `withdrawn`; it never counts against the store. The body is `{}` or
    none."""
    return _with_etag(response, svc.withdraw(ctx, caller, work_order_id, if_match))


@router.get(ONE + "/events", response_model=m.EventPage, summary="List the history",
            responses=problems(not_found=_UNSEEN, validation_error=_CURSOR))
def events(work_order_id: PathId, ctx: Ctx, caller: Caller, limit: Limit = 50,
           cursor: Cursor = None) -> dict[str, Any]:
    """The work order's audit history, oldest first: each event is a link of a hash chain
    (`hash` covers the event and `prev_hash`). Every party sees the `all` chain; the
    `platform` chain (platform-only notes) is shown whole to the platform staff and admin,
    and to the others only for their own events. To whoever may see the work order."""
    after = seq_pair_cursor(cursor)
    links = svc.list_events(ctx, caller, work_order_id, after, limit + 1)
    # The next page starts after the last seq shown of each chain.
    seen = dict(zip(VISIBILITIES, after, strict=True))
    for link in links[:limit]:
        seen[link.visibility] = link.seq
    return page(links, limit, lambda _: [seen[v] for v in VISIBILITIES], s.event_out)


@router.get(ONE + "/deliveries", response_model=m.DeliveryPage,
            summary="List notification deliveries",
            responses=problems(not_found=_UNSEEN, validation_error=_CURSOR))
def deliveries(work_order_id: PathId, ctx: Ctx, caller: Caller, limit: Limit = 50,
               cursor: Cursor = None) -> dict[str, Any]:
    """The delivery log of the work order's notifications: every line to the platform and
    admin, the lines to its staff to the store, their own to the consumer."""
    return offset_page(svc.list_deliveries(ctx, caller, work_order_id), limit, cursor,
                       s.delivery_out)
