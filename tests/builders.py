"""A small world for service and API tests: one store of each platform, an account per
role, and orders. Built through the services, like real data."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import timedelta

from collabdesk.domain.metrics import (
    Counters,
    Rollup,
    StoreMetrics,
    Window,
    WorkOrderFacts,
    compute,
    contribution,
)
from collabdesk.domain.records import Account
from collabdesk.domain.states import Role
from collabdesk.domain.values import (
    Actor,
    Category,
    ContactChannel,
    ContactOutcome,
    Order,
    OrderKind,
    Store,
    StorePlatform,
)
from collabdesk.services import accounts, catalog, evidence
from collabdesk.services import work_orders as wo
from collabdesk.services.access import actor_of
from collabdesk.services.context import ServiceContext

ROLES = ("consumer", "consumer2", "owner", "agent", "other_owner", "triage", "verifier",
         "adjudicator", "supervisor", "integration", "admin")


@dataclass
class World:
    ctx: ServiceContext
    actors: dict[str, Actor] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    order_seq: int = 0

    def __getattr__(self, name: str) -> Actor:
        actors: dict[str, Actor] = self.__dict__["actors"]
        if name not in actors:
            raise AttributeError(name)
        return actors[name]

    def order(self, *, kind: OrderKind = OrderKind.STANDARD, amount_cents: int = 10_000,
              consumer: str = "consumer", store_id: str = "s-tmall") -> Order:
        self.order_seq += 1
        order = Order(f"o-{self.order_seq}", store_id, self.actors[consumer].id, kind,
                      amount_cents, self.ctx.clock.now() - timedelta(days=1))
        return catalog.create_order(self.ctx, None, order)

    def open(self, *, kind: OrderKind = OrderKind.STANDARD, amount_cents: int = 10_000,
             consumer: str = "consumer") -> str:
        order = self.order(kind=kind, amount_cents=amount_cents, consumer=consumer)
        return wo.open_work_order(self.ctx, self.actors[consumer], order_id=order.id,
                                  category=Category.DAMAGED, claim="arrived broken",
                                  requested_remedy=None).id

    def evidence(self, actor: str, text: str = "call log") -> str:
        return evidence.upload(self.ctx, self.actors[actor], io.BytesIO(text.encode()),
                               "log.txt").id

    def contact(self, work_order_id: str, outcome: ContactOutcome = ContactOutcome.REACHED,
                actor: str = "agent", with_evidence: bool = False) -> None:
        ids = (self.evidence(actor),) if with_evidence else ()
        wo.log_contact(self.ctx, self.actors[actor], work_order_id,
                       channel=ContactChannel.PHONE, contacted_at=self.ctx.clock.now(),
                       outcome=outcome, summary="called", evidence_ids=ids)


def make_world(ctx: ServiceContext) -> World:
    world = World(ctx)
    catalog.create_store(ctx, None, Store("s-tmall", "Tmall store", StorePlatform.TMALL))
    catalog.create_store(ctx, None, Store("s-taobao", "Taobao store", StorePlatform.TAOBAO))
    spec = {
        "consumer": (Role.CONSUMER, None), "consumer2": (Role.CONSUMER, None),
        "owner": (Role.MERCHANT_OWNER, "s-tmall"), "agent": (Role.MERCHANT_AGENT, "s-tmall"),
        "other_owner": (Role.MERCHANT_OWNER, "s-taobao"), "triage": (Role.TRIAGE, None),
        "verifier": (Role.VERIFIER, None), "adjudicator": (Role.ADJUDICATOR, None),
        "supervisor": (Role.SUPERVISOR, None), "integration": (Role.INTEGRATION, None),
        "admin": (Role.ADMIN, None),
    }
    for name, (role, store) in spec.items():
        account, token = accounts.create_account(ctx, None, name=name, role=role,
                                                 store_id=store)
        world.accounts[name] = account
        world.actors[name] = actor_of(account)
        world.tokens[name] = token
    return world


def figures(platform: StorePlatform, window: Window, paid_orders: int,
            facts: list[WorkOrderFacts], store_id: str = "s-1") -> StoreMetrics:
    """The figures of hand-built facts as the service gets them: each work order's
    contribution to the rollups, summed over the window's days, with `paid_orders` orders
    paid in the window."""
    rollup = Rollup()
    for f in facts:
        rollup.add(contribution(store_id, f))
    totals, minutes = rollup.window(store_id, *window.days)
    return compute(platform, totals + Counters(paid_orders=paid_orders), minutes)
