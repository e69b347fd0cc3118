"""`serve --demo`: stores, accounts, orders and work orders in every state.

The demo tokens are public on purpose (printed and in the README) so a newcomer can
follow the curl examples; never use --demo on a database that matters.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role
from collabdesk.domain.values import (
    Actor,
    AppealDecision,
    Category,
    ContactChannel,
    ContactOutcome,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    Store,
    StorePlatform,
    VerificationOutcome,
)
from collabdesk.domain.violations import Severity, ViolationKind

from . import accounts, catalog, evidence, violations
from . import work_orders as wo
from .access import actor_of
from .context import ServiceContext
from .timers import fire_due_timers

PASSWORD = "demo-password"

DEMO_ACCOUNTS: tuple[tuple[str, str, Role, str | None], ...] = (
    ("acc_demo_consumer", "Li Wei (consumer)", Role.CONSUMER, None),
    ("acc_demo_consumer2", "Wang Fang (consumer)", Role.CONSUMER, None),
    ("acc_demo_owner", "Tmall shop owner", Role.MERCHANT_OWNER, "demo-tmall"),
    ("acc_demo_agent", "After-sales agent 售后专员", Role.MERCHANT_AGENT, "demo-tmall"),
    ("acc_demo_taobao_owner", "Taobao shop owner", Role.MERCHANT_OWNER, "demo-taobao"),
    ("acc_demo_triage", "Platform triage", Role.TRIAGE, None),
    ("acc_demo_verifier", "Second-line verifier 二线", Role.VERIFIER, None),
    ("acc_demo_adjudicator", "Adjudicator", Role.ADJUDICATOR, None),
    ("acc_demo_supervisor", "Supervisor", Role.SUPERVISOR, None),
    ("acc_demo_integration", "Order system", Role.INTEGRATION, None),
)


def demo_token(account_id: str) -> str:
    return "demo-" + account_id.removeprefix("acc_demo_").replace("_", "-")


@dataclass(frozen=True)
class DemoSummary:
    created: bool
    work_orders: dict[str, str]  # state -> a work order id in that state


def is_empty(ctx: ServiceContext) -> bool:
    return ctx.read(lambda uow: uow.stores.get("demo-tmall") is None)


class SettableClock(Protocol):
    """The demo's own clock, which it sets and moves to write ten days of history."""

    def now(self) -> datetime: ...
    def set(self, moment: datetime) -> None: ...
    def advance(self, seconds: float) -> datetime: ...


def seed(ctx: ServiceContext, clock: SettableClock) -> DemoSummary:
    """Fill an empty database; `clock` is moved through the past ten days as it goes."""
    if not is_empty(ctx):
        return DemoSummary(False, {})
    real_now = ctx.clock.now().replace(microsecond=0)
    clock.set(real_now - timedelta(days=10))
    d = replace(ctx, clock=clock)
    catalog.create_store(d, None, Store("demo-tmall", "Demo Tmall Flagship", StorePlatform.TMALL))
    catalog.create_store(d, None, Store("demo-taobao", "Demo Taobao Shop",
                                        StorePlatform.TAOBAO))
    actors: dict[str, Actor] = {}
    for account_id, name, role, store in DEMO_ACCOUNTS:
        login = account_id.removeprefix("acc_demo_")
        account, _ = accounts.create_account(
            d, None, name=name, role=role, store_id=store, phone="+86 138 0000 0000",
            login=login, password=PASSWORD, token=demo_token(account_id),
            account_id=account_id)
        actors[login] = actor_of(account)
    consumer, owner, agent = actors["consumer"], actors["owner"], actors["agent"]

    orders = []
    for i in range(14):
        kind = OrderKind.WORRY_FREE if i == 5 else OrderKind.STANDARD
        order = Order(f"demo-order-{i + 1:02d}", "demo-tmall",
                      consumer.id if i % 2 == 0 else actors["consumer2"].id, kind,
                      19_900 + 1_000 * i, clock.now() - timedelta(days=i % 9))
        catalog.create_order(d, None, order)
        orders.append(order)
    for i in range(20):
        catalog.create_order(d, None, Order(
            f"demo-paid-{i + 1:02d}", "demo-tmall", actors["consumer2"].id,
            OrderKind.STANDARD, 9_900, clock.now() - timedelta(days=i % 20)))

    def proof(text: str, actor: Actor) -> str:
        return evidence.upload(d, actor, io.BytesIO(text.encode()), "proof.txt").id

    def opened(n: int, claim: str, by: Actor | None = None) -> str:
        order = orders[n]
        opener = by or (consumer if order.consumer_id == consumer.id else actors["consumer2"])
        return wo.open_work_order(
            d, opener, order_id=order.id, category=Category.NOT_AS_DESCRIBED, claim=claim,
            requested_remedy=Remedy(RemedyType.REFUND, 5_000)).id

    def reached(work_order_id: str) -> None:
        clock.advance(1800)
        wo.log_contact(d, agent, work_order_id, channel=ContactChannel.PHONE,
                       contacted_at=clock.now(), outcome=ContactOutcome.REACHED,
                       summary="Called the consumer", evidence_ids=())
        clock.advance(600)

    states: dict[str, str] = {}
    # resolved: agreed, consumer accepted
    w = opened(0, "Colour differs from the photos")
    reached(w)
    wo.reply(d, agent, w, option=ReplyOption.RESOLVED_AGREED, statement="Partial refund",
             agreement=Remedy(RemedyType.REFUND, 3_000), evidence_ids=())
    wo.respond_as_consumer(d, consumer, w, accept=True, statement="OK")
    states["resolved"] = w
    # judged for the merchant after no agreement
    w = opened(2, "Scratches on the case")
    reached(w)
    wo.reply(d, owner, w, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
             statement="Consumer wants a full refund for a cosmetic scratch",
             agreement=None, evidence_ids=())
    wo.judge(d, actors["adjudicator"], w, ruling=Ruling.FOR_MERCHANT,
             rationale="Cosmetic, within the listing's description", remedy=None)
    states["judged"] = w
    # dismissed: not related, confirmed by the second line
    w = opened(4, "Parcel never arrived")
    wo.reply(d, agent, w, option=ReplyOption.NOT_RELATED,
             statement="Order shipped by another store", agreement=None, evidence_ids=())
    wo.verify(d, actors["verifier"], w, outcome=VerificationOutcome.UNRELATED_CONFIRMED,
              rationale="Logistics record confirms")
    states["dismissed"] = w
    # settled: worry-free purchase
    w = opened(5, "Broken on arrival", by=actors["triage"])
    wo.settle(d, actors["triage"], w, amount_cents=20_000, rationale="Worry-free standard")
    states["settled"] = w
    # withdrawn
    w = opened(6, "Wrong size")
    wo.withdraw(d, consumer, w)
    states["withdrawn"] = w
    # under appeal, with a violation recorded for forged evidence
    w = opened(8, "Item is counterfeit")
    reached(w)
    wo.reply(d, agent, w, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
             statement="We dispute the claim", agreement=None, evidence_ids=())
    wo.judge(d, actors["adjudicator"], w, ruling=Ruling.FOR_CONSUMER,
             rationale="Authenticity certificate was not provided",
             remedy=Remedy(RemedyType.RETURN_AND_REFUND, orders[8].amount_cents))
    violations.record_violation(
        d, actors["adjudicator"], store_id="demo-tmall", work_order_id=w,
        kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.GENERAL,
        rationale="Edited chat screenshot", evidence_ids=())
    wo.appeal(d, owner, w, statement="We have the supplier invoice", evidence_ids=())
    states["under_appeal"] = w
    # judged for the consumer, appeal overturned
    w = opened(10, "Missing accessories")
    reached(w)
    wo.reply(d, agent, w, option=ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="Disagree",
             agreement=None, evidence_ids=())
    wo.judge(d, actors["adjudicator"], w, ruling=Ruling.FOR_CONSUMER, rationale="Photos",
             remedy=Remedy(RemedyType.REISSUE))
    wo.appeal(d, owner, w, statement="Packing video shows accessories", evidence_ids=())
    wo.decide_appeal(d, actors["supervisor"], w, decision=AppealDecision.OVERTURNED,
                     rationale="The packing video is conclusive")
    states["judged_overturned"] = w
    fire_due_timers(d)

    # The rest happen within the last day, relative to the real clock.
    clock.set(real_now - timedelta(hours=30))
    w = opened(12, "Refund still not received")  # times out after 24 h: evidence waived
    states["in_adjudication"] = w
    clock.set(real_now - timedelta(hours=3))
    w = opened(1, "Arrived late and damaged")
    for attempt in (1, 2):
        clock.advance(900)
        wo.log_contact(d, agent, w, channel=ContactChannel.PHONE, contacted_at=clock.now(),
                       outcome=ContactOutcome.UNREACHABLE, summary=f"Call {attempt}: no answer",
                       evidence_ids=(proof(f"call log, attempt {attempt}", agent),))
    wo.reply(d, agent, w, option=ReplyOption.UNRESOLVED_UNREACHABLE, statement=None,
             agreement=None, evidence_ids=())
    states["awaiting_verification"] = w
    w = opened(3, "Shoes too small")
    reached(w)
    wo.reply(d, agent, w, option=ReplyOption.RESOLVED_AGREED, statement="Exchange agreed",
             agreement=Remedy(RemedyType.EXCHANGE), evidence_ids=())
    states["awaiting_consumer"] = w
    clock.set(real_now - timedelta(hours=1))
    states["awaiting_merchant"] = opened(7, "Screen flickers")
    states["worry_free"] = _worry_free(d, actors, clock.now())
    clock.set(real_now)
    fire_due_timers(d)
    return DemoSummary(True, states)


def _worry_free(d: ServiceContext, actors: dict[str, Actor], now: datetime) -> str:
    order = Order("demo-order-wf", "demo-tmall", actors["consumer"].id, OrderKind.WORRY_FREE,
                  12_900, now - timedelta(days=2))
    catalog.create_order(d, None, order)
    return wo.open_work_order(d, actors["consumer"], order_id=order.id,
                              category=Category.QUALITY, claim="Stopped working",
                              requested_remedy=None).id
