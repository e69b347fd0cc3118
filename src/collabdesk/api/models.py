"""Response models: what every answer of the API looks like, for `/openapi.json`.

The renderers in `schemas.py` define the wire format; these models describe it. A route
names its model with `response_model=`, so FastAPI checks each answer against it (a
renderer that drifts from its model fails loudly, in the tests first) and documents it.

Rules that keep the renderers' output byte for byte what it was:

- Routes are `RenderedRoute`s, which send only the keys the renderer set: a field with a
  default here (`amount_cents` of a remedy, `token` of a new account) is one the renderer
  leaves out when it has no value, and the document lists it as optional, not nullable.
- Times are the renderers' strings (ISO 8601 in UTC with `Z`), documented as strings of
  `format: date-time`, never re-parsed; figures that may be whole or fractional keep
  their JSON number as rendered.
- An unknown key in a renderer's output is an error (`extra="forbid"`), but the document
  does not say `additionalProperties: false`: the API may add fields (api-guide.md).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from collabdesk.domain.evidence import ALLOWED_MEDIA_TYPES
from collabdesk.domain.records import DeliveryStatus, InboxKind
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role, State
from collabdesk.domain.values import (
    AppealDecision,
    Category,
    ContactChannel,
    ContactOutcome,
    NoteVisibility,
    OrderKind,
    RemedyType,
    Ruling,
    StorePlatform,
    VerificationOutcome,
)
from collabdesk.domain.violations import (
    Severity,
    ViolationDecision,
    ViolationKind,
    ViolationState,
)

T = TypeVar("T")

Time = Annotated[str, WithJsonSchema(
    {"type": "string", "format": "date-time",
     "description": "ISO 8601 in UTC with `Z`, e.g. `2026-11-02T08:00:00Z`"})]
Day = Annotated[str, WithJsonSchema(
    {"type": "string", "format": "date", "description": "a UTC day, `YYYY-MM-DD`"})]
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
MediaType = Annotated[str, WithJsonSchema(
    {"type": "string", "enum": list(ALLOWED_MEDIA_TYPES)})]


def _open_schema(schema: dict[str, Any]) -> None:
    """The documented schema of an answer: open to additions, and a field that may be
    left out is simply not required (never `null`, never a default)."""
    schema.pop("additionalProperties", None)
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in required:
            continue
        prop.pop("default", None)
        variants = prop.get("anyOf")
        if variants:
            kept = [v for v in variants if v != {"type": "null"}]
            if len(kept) == 1:
                prop.pop("anyOf")
                prop.update(kept[0])


class Out(BaseModel):
    """A response body, as a renderer emits it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_open_schema)


class RenderedRoute(APIRoute):
    """A route whose answer is a renderer's dict: checked against `response_model`, then
    sent with exactly the keys the renderer set (`response_model_exclude_unset`).

    A plain `def` endpoint (one that does blocking database work) runs in the thread pool
    once: FastAPI would hop to a thread for the endpoint and again to check its answer
    against the response model, which takes microseconds and is done on the loop here.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model_exclude_unset"] = True
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_one_hop(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _in_one_hop(sync_endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(sync_endpoint)  # FastAPI reads the parameters through __wrapped__
    async def endpoint(**kwargs: Any) -> Any:
        return await run_in_threadpool(sync_endpoint, **kwargs)
    return endpoint


# ---- work orders -------------------------------------------------------------------------

class Remedy(Out):
    """A remedy asked for, agreed or ruled; money in cents."""

    type: RemedyType
    amount_cents: int | None = Field(
        default=None, description="present for money remedies (refund, compensation...)")
    note: str | None = Field(default=None, description="present when one was given")


class Reply(Out):
    """The store's reply (rules.md §5)."""

    option: ReplyOption
    statement: str | None
    agreement: Remedy | None
    evidence_ids: list[str]
    replied_at: Time
    replied_by: str


class Judgment(Out):
    """The platform's ruling."""

    ruling: Ruling
    rationale: str
    remedy: Remedy | None
    judged_at: Time
    judged_by: str


class WorkOrderAppeal(Out):
    """The store owner's appeal of a ruling, and the supervisor's decision once made."""

    statement: str
    appealed_at: Time
    decision: AppealDecision | None
    decided_at: Time | None
    evidence_ids: list[str]
    rationale: str | None


class Verification(Out):
    """The verifier's check of the store's reply."""

    outcome: VerificationOutcome
    rationale: str
    verified_at: Time
    verified_by: str


class ConsumerResponse(Out):
    """The consumer's answer to the store's agreement."""

    accept: bool
    statement: str | None
    responded_at: Time


class Settlement(Out):
    """The platform's payout on a worry-free work order."""

    amount_cents: int
    rationale: str
    settled_at: Time
    settled_by: str


class WorkOrder(Out):
    """A work order (协同工单). Its `version` is also its `ETag`."""

    id: str
    order_id: str
    store_id: str
    consumer_id: str
    category: Category
    claim: str
    requested_remedy: Remedy | None
    state: State
    created_at: Time
    due_at: Time | None = Field(description="the store's reply deadline; null for worry-free")
    evidence_waived: bool
    reply: Reply | None
    judgment: Judgment | None
    appeal: WorkOrderAppeal | None
    counts_as_dispute: bool
    version: int
    order_kind: OrderKind
    verification: Verification | None
    consumer_response: ConsumerResponse | None
    settlement: Settlement | None
    timed_out_at: Time | None
    closed_at: Time | None
    sla_overdue: bool


class Contact(Out):
    """A contact attempt the store logged."""

    id: str
    work_order_id: str
    channel: ContactChannel
    contacted_at: Time
    outcome: ContactOutcome
    summary: str | None
    evidence_ids: list[str]
    recorded_by: str
    recorded_at: Time


class Note(Out):
    """A note on a work order; `platform` notes are the platform's and their author's."""

    id: str
    work_order_id: str
    author_id: str
    author_role: Role
    text: str
    visibility: NoteVisibility
    evidence_ids: list[str]
    created_at: Time


class Event(Out):
    """A link of a work order's hash chain. There are two chains: `all` (what every party
    sees) and `platform` (platform-only); `seq` and `prev_hash` run within one chain."""

    seq: int
    at: Time
    actor_id: str
    type: str
    data: dict[str, Any]
    prev_hash: str | None
    hash: str
    visibility: Literal["all", "platform"]


class Delivery(Out):
    """A line of the notification delivery log."""

    id: str
    recipient_id: str
    channel: str
    kind: str
    status: DeliveryStatus
    reason: str | None
    at: Time
    work_order_id: str | None
    attempt: int | None = Field(description="1, 2, ... on sms, email and webhook "
                                                  "(none on the inbox)")
    event_id: str | None = Field(description="a webhook delivery's event id")
    destination: str | None = Field(description="the masked phone number or email "
                                                      "address, or the webhook's URL")


# ---- the rest ----------------------------------------------------------------------------

class InboxItem(Out):
    """A notification in the caller's inbox."""

    id: str
    kind: InboxKind
    work_order_id: str | None
    created_at: Time
    text: str
    read: bool


class Evidence(Out):
    """An evidence file's record; its content is at `GET /v1/evidence/{id}`."""

    id: str
    sha256: str
    media_type: MediaType
    size: int
    filename: str | None
    uploaded_by: str
    uploaded_at: Time


class Account(Out):
    """An account."""

    id: str
    name: str
    role: Role
    store_id: str | None
    language: str = Field("zh", description="the language of its notifications: zh or en")


class NewAccount(Account):
    """The new account, with its bearer token."""

    token: str | None = Field(
        default=None, description="the bearer token, shown only in the first answer (an "
                                  "Idempotency-Key replay leaves it out)")


class MyContact(Account):
    """The caller's account with where its notifications go."""

    phone: str | None
    email: str | None


class StaffAccount(Account):
    """The agent's account, with its work-order permission."""

    work_orders: bool = Field(description="whether the agent handles the store's work orders")


class Me(Out):
    """Who the token belongs to."""

    id: str
    role: Role
    store_id: str | None


class Store(Out):
    """A store."""

    id: str
    name: str
    platform: StorePlatform


class Order(Out):
    """An order."""

    id: str
    store_id: str
    consumer_id: str
    kind: OrderKind
    amount_cents: int
    paid_at: Time


class Violation(Out):
    """A violation recorded against a store, with its appeal and decision."""

    id: str
    store_id: str
    work_order_id: str
    kind: ViolationKind
    severity: Severity
    points: int
    state: ViolationState
    recorded_at: Time
    rationale: str
    evidence_ids: list[str]
    recorded_by: str
    appeal_statement: str | None
    appealed_at: Time | None
    decision: ViolationDecision | None
    decided_at: Time | None


class PointsEntry(Out):
    """A line of the points ledger; a revocation is a line of negative points."""

    id: str
    violation_id: str
    points: int
    reason: str
    at: Time


class PointsStatement(Out):
    """A store's points ledger for one calendar year, and its total."""

    store_id: str
    year: int
    total: int
    entries: list[PointsEntry]


class StoreMetrics(Out):
    """A store's figures over the window ending on `as_of` (rules.md §8); a rate is null
    when there is nothing to divide by."""

    store_id: str
    platform: StorePlatform
    metric: Literal["dispute_refund_rate", "platform_dispute_rate"]
    window_days: int
    window_start: Time
    window_end: Time
    dispute_count: int
    paid_orders: int
    dispute_rate: Number | None
    work_orders: int
    replied_on_time: int
    on_time_reply_rate: Number | None
    timeouts: int
    median_reply_seconds: Number | None
    agreement_rate: Number | None
    intervention_rate: Number | None


class DayMetrics(Out):
    """One UTC day's figures (rules.md §8, by day): the work orders opened that day and
    what became of them, the rulings given that day, the orders paid that day. A rate is
    null when there is nothing to divide by."""

    day: Day
    work_orders: int
    replied_on_time: int
    on_time_reply_rate: Number | None
    timeouts: int
    median_reply_seconds: Number | None
    agreement_rate: Number | None
    intervention_rate: Number | None
    dispute_count: int
    paid_orders: int
    dispute_rate: Number | None


class DailyMetrics(Out):
    """A store's figures day by day, one entry per day from `from` to `to` (both
    included), days without anything included."""

    store_id: str
    platform: StorePlatform
    metric: Literal["dispute_refund_rate", "platform_dispute_rate"]
    from_: Day = Field(alias="from")
    to: Day
    days: list[DayMetrics]


class ServiceInfo(Out):
    """What this server is, and where its documentation lives."""

    name: str
    version: str
    description: str
    docs: str
    openapi: str
    health: str


class Health(Out):
    """The process answers."""

    status: Literal["ok"]


class ClockReading(Out):
    """The test clock's time."""

    now: Time


class ClockAdvanced(Out):
    """The test clock's new time, how many timers fired, and how many delivery attempts
    (SMS, email, webhooks) were made."""

    now: Time
    fired: int = Field(description="how many timers fired")
    sent: int = Field(0, description="delivery attempts made on the external channels "
                                     "(each retry counts)")


# ---- lists -------------------------------------------------------------------------------

class Page(Out, Generic[T]):
    """A page of a list; `next_cursor` leads to the next."""

    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page")


class WorkOrderPage(Page[WorkOrder]):
    """A page of work orders."""


class ContactPage(Page[Contact]):
    """A page of contacts."""


class NotePage(Page[Note]):
    """A page of notes."""


class EventPage(Page[Event]):
    """A page of events."""


class DeliveryPage(Page[Delivery]):
    """A page of delivery log lines."""


class InboxPage(Page[InboxItem]):
    """A page of notifications."""


class Webhook(Out):
    """A store's webhook (its secret is shown only when it is registered)."""

    id: str
    store_id: str
    url: str
    events: list[str]
    enabled: bool
    created_at: Time
    failing_since: Time | None = Field(
        description="the first failed attempt of the current run of failures")
    last_error: str | None
    last_delivered_at: Time | None
    disabled_at: Time | None = Field(description="when 3 days of failures switched "
                                                       "it off")


class NewWebhook(Webhook):
    """The new webhook, with the secret that signs its deliveries: shown only here."""

    secret: str | None = Field(
        default=None, description="HMAC-SHA256 key of `Collabdesk-Signature`; an "
                                  "Idempotency-Key replay leaves it out")


class WebhookPage(Page[Webhook]):
    """The store's webhooks."""


class Redelivery(Out):
    """A new delivery of an event to a webhook, queued to go out now."""

    event_id: str
    webhook_id: str
    status: DeliveryStatus
    due_at: Time


class RecipientChannel(Out):
    channel: str = Field(description="inbox, sms or email")
    address: str | None = Field(description="masked phone number or email address")
    ok: bool
    problem: str | None = Field(description="the problem's code when not ok")


class Recipient(Out):
    account_id: str
    name: str
    role: Role
    channels: list[RecipientChannel]


class CheckProblem(Out):
    code: str = Field(description="no_staff, no_permission_holder, no_phone, no_email, "
                                  "sms_not_configured, smtp_not_configured, webhook_failing, "
                                  "webhook_disabled, webhook_not_subscribed")
    detail: str
    account_id: str | None
    webhook_id: str | None
    since: Time | None


class NotificationCheck(Out):
    """Who would receive a new work order of the store now, by which channel, and every
    problem found on the way."""

    store_id: str
    checked_at: Time
    ok: bool = Field(description="no problem found")
    recipients: list[Recipient]
    webhooks: list[Webhook]
    problems: list[CheckProblem]
    last_failures: list[Delivery] = Field(description="the latest failed or retrying "
                                                      "deliveries to the store, newest first")


# ---- errors ------------------------------------------------------------------------------

class FieldError(BaseModel):
    field: str = Field(description="where: a body field (`requested_remedy.amount_cents`), "
                                   "a parameter, or `body`")
    message: str


class Problem(BaseModel):
    """An error (RFC 9457 `application/problem+json`); branch on `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = Field(
        default=None, description="each invalid field, on `validation_error` from the "
                                  "request's shape")
    error_id: str | None = Field(
        default=None, description="on `internal_error`: quote it when reporting the error")

    model_config = ConfigDict(json_schema_extra=_open_schema)
