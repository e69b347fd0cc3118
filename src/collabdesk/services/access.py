"""Who may see what. A resource a party may not see is reported as not found."""

from __future__ import annotations

from collabdesk.domain.audit import ALL
from collabdesk.domain.errors import NotFound
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import Account
from collabdesk.domain.states import MERCHANT_ROLES, PLATFORM_ROLES, Role
from collabdesk.domain.values import Actor

from .ports import UnitOfWork

SEES_EVERYTHING = PLATFORM_ROLES | {Role.ADMIN}


def actor_of(account: Account) -> Actor:
    return Actor(account.id, account.role, account.store_id, account.handles_work_orders)


def handles_store(actor: Actor, store_id: str) -> bool:
    """Store staff who may handle its work orders: the owner, and agents holding the
    work-order permission (rules.md §2, §7)."""
    if actor.role not in MERCHANT_ROLES or actor.store_id != store_id:
        return False
    return actor.role is Role.MERCHANT_OWNER or actor.handles_work_orders


def can_see(actor: Actor, wo: WorkOrder) -> bool:
    if actor.role in SEES_EVERYTHING:
        return True
    if actor.role is Role.CONSUMER:
        return wo.consumer_id == actor.id
    return handles_store(actor, wo.store_id)


def visible_work_order(uow: UnitOfWork, actor: Actor, work_order_id: str) -> WorkOrder:
    wo = uow.work_orders.get(work_order_id)
    if wo is None or not can_see(actor, wo):
        raise NotFound(f"work order {work_order_id} not found")
    return wo


def can_see_store(actor: Actor, store_id: str) -> bool:
    """Store details and figures: its own merchants and the platform; not other stores."""
    if actor.role in MERCHANT_ROLES:
        return actor.store_id == store_id
    return True


def may_cite_evidence(actor: Actor, uploaded_by: str, attachments: list[tuple[str, str]],
                      work_order_id: str) -> bool:
    """Evidence may be cited on a work order by its uploader, or once it is attached to
    that work order where the actor may see it: for every party, or platform-only for
    the platform."""
    if uploaded_by == actor.id:
        return True
    return any(wo_id == work_order_id and may_see_attachment(actor, visibility)
               for wo_id, visibility in attachments)


def may_see_attachment(actor: Actor, visibility: str) -> bool:
    """A platform-only attachment (evidence on a platform-only note) is the platform's."""
    return visibility == ALL or actor.role in SEES_EVERYTHING
