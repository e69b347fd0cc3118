"""Who is told what, written in the same transaction as the change that causes it.

Today the one channel is the in-app inbox (the IM work-order card). Every attempt is a
line in the delivery log, so "why did I not receive the work order?" has an answer. The
SMS, email and webhook channels add their lines here as pending outbox rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import (
    Account,
    Delivery,
    DeliveryStatus,
    InboxItem,
    InboxKind,
)
from collabdesk.domain.states import Role
from collabdesk.domain.values import DomainEvent, utc_iso

from .context import new_id
from .ports import UnitOfWork

INBOX = "inbox"


@dataclass
class Notices:
    """What one unit of work will tell people, written with one statement per table at
    `flush` (the timer runner shares one across a whole batch). Recipients are looked up
    once per store or consumer."""

    uow: UnitOfWork
    inbox: list[InboxItem] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _staff: dict[str, list[Account]] = field(default_factory=dict)
    _accounts: dict[str, Account | None] = field(default_factory=dict)

    def store_recipients(self, store_id: str) -> list[Account]:
        if store_id not in self._staff:
            self._staff[store_id] = store_recipients(self.uow, store_id)
        return self._staff[store_id]

    def account(self, account_id: str) -> Account | None:
        if account_id not in self._accounts:
            self._accounts[account_id] = self.uow.accounts.get(account_id)
        return self._accounts[account_id]

    def flush(self) -> None:
        self.uow.inbox.add_many(self.inbox)
        self.uow.deliveries.add_many(self.deliveries)
        self.inbox, self.deliveries = [], []


def store_recipients(uow: UnitOfWork, store_id: str) -> list[Account]:
    """Agents holding the work-order permission; the owner(s) when none does (§7)."""
    staff = uow.accounts.store_staff(store_id)
    agents = [a for a in staff if a.role is Role.MERCHANT_AGENT and a.handles_work_orders]
    return agents or [a for a in staff if a.role is Role.MERCHANT_OWNER]


def deliver(notices: Notices, recipient: Account, kind: InboxKind, text: str,
            work_order_id: str | None, now: datetime) -> None:
    notices.inbox.append(InboxItem(new_id("ntf"), recipient.id, kind, work_order_id, text,
                                   now))
    notices.deliveries.append(Delivery(new_id("dlv"), work_order_id, recipient.id,
                                       recipient.store_id, INBOX, str(kind),
                                       DeliveryStatus.DELIVERED, None, now))


def notify_store(notices: Notices, wo: WorkOrder, kind: InboxKind, text: str,
                 now: datetime) -> None:
    recipients = notices.store_recipients(wo.store_id)
    if not recipients:
        # Logged so the store can see why nobody got it.
        notices.deliveries.append(Delivery(
            new_id("dlv"), wo.id, "store:" + wo.store_id, wo.store_id, INBOX, str(kind),
            DeliveryStatus.SKIPPED, "the store has no staff account to receive it", now))
    for account in recipients:
        deliver(notices, account, kind, text, wo.id, now)


def notify_consumer(notices: Notices, wo: WorkOrder, kind: InboxKind, text: str,
                    now: datetime) -> None:
    consumer = notices.account(wo.consumer_id)
    if consumer is None:
        notices.deliveries.append(Delivery(new_id("dlv"), wo.id, wo.consumer_id, None, INBOX,
                                           str(kind), DeliveryStatus.SKIPPED,
                                           "the consumer has no account", now))
        return
    deliver(notices, consumer, kind, text, wo.id, now)


def _ref(wo: WorkOrder) -> str:
    return f"协同工单 {wo.id}（订单 {wo.order_id}）"


def on_events(notices: Notices, wo: WorkOrder, events: list[DomainEvent]) -> None:
    """Turn what happened to a work order into notifications (rules.md §7)."""
    for ev in events:
        now = ev.at
        if ev.type == "opened":
            due = f"，请在 {utc_iso(wo.due_at)} 前联系消费者并回复工单" if wo.due_at else \
                "（无忧购订单，由平台按无忧购标准处理，无需判责）"
            notify_store(notices, wo, InboxKind.WORK_ORDER_CREATED,
                         f"【工单卡片】消费者向平台求助：{_ref(wo)}{due}。Claim: {wo.claim}", now)
        elif ev.type == "timed_out":
            notify_store(notices, wo, InboxKind.TIMEOUT,
                         f"【超时】{_ref(wo)} 未在时限内回复，视为放弃举证，平台介入判责。", now)
        elif ev.type == "replied" and ev.data.get("option") == "resolved_agreed":
            notify_consumer(notices, wo, InboxKind.CONFIRMATION_REQUESTED,
                            f"商家表示已与您达成一致：{_ref(wo)}，请确认或拒绝。", now)
        elif ev.type == "verified":
            text = f"二线核实结果（{ev.data['outcome']}）：{_ref(wo)}，当前状态 {wo.state}。"
            notify_store(notices, wo, InboxKind.VERIFICATION_DECIDED, text, now)
            notify_consumer(notices, wo, InboxKind.VERIFICATION_DECIDED, text, now)
        elif ev.type == "judged":
            text = f"平台已判责（{ev.data['ruling']}）：{_ref(wo)}。"
            notify_store(notices, wo, InboxKind.JUDGED, text, now)
            notify_consumer(notices, wo, InboxKind.JUDGED, text, now)
        elif ev.type == "appeal_decided":
            text = f"申诉结果（{ev.data['decision']}）：{_ref(wo)}。"
            notify_store(notices, wo, InboxKind.APPEAL_DECIDED, text, now)
            notify_consumer(notices, wo, InboxKind.APPEAL_DECIDED, text, now)
        elif ev.type == "violation_recorded":
            notify_store(notices, wo, InboxKind.VIOLATION_RECORDED,
                         f"【违规】{_ref(wo)}：虚假凭证，{ev.data['severity']} 违规，"
                         f"扣 {ev.data['points']} 分，可在申诉期内申诉。", now)
        elif ev.type in ("consumer_responded", "confirmation_lapsed", "withdrawn", "settled"):
            text = f"{_ref(wo)} 状态更新：{wo.state}。"
            notify_store(notices, wo, InboxKind.WORK_ORDER_CLOSED if not wo.is_open
                         else InboxKind.STATE_CHANGED, text, now)
            # The consumer decided the other two; these two decide the case for them.
            if ev.type == "settled":
                notify_consumer(notices, wo, InboxKind.WORK_ORDER_CLOSED, text, now)
            elif ev.type == "confirmation_lapsed":
                notify_consumer(notices, wo, InboxKind.WORK_ORDER_CLOSED,
                                f"确认期已过，视为您接受商家的协商结果：{_ref(wo)} 已解决。", now)


def remind_store(notices: Notices, wo: WorkOrder, now: datetime) -> None:
    due = utc_iso(wo.due_at) if wo.due_at else "?"
    notify_store(notices, wo, InboxKind.REMINDER,
                 f"【催促】{_ref(wo)} 尚未回复，截止时间 {due}，请尽快联系消费者并回复。", now)
