"""Notifications are written in the transaction of the change that causes them: a change
that rolls back tells nobody, on any channel (services/notifications.py). Both databases,
with real receivers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collabdesk.adapters.db import tables as t
from collabdesk.bootstrap import Container, senders
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.states import Role
from collabdesk.domain.values import Category
from collabdesk.services import accounts, webhooks
from collabdesk.services.context import ServiceContext, new_id
from collabdesk.services.outbox import dispatch_due
from collabdesk.services.ports import UnitOfWork
from collabdesk.services.work_orders import commit_change
from collabdesk.settings import Settings
from tests.builders import World, make_world
from tests.receivers import HttpReceiver, SmtpServer, http_receiver


class Boom(Exception):
    pass


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with http_receiver("/hook") as receiver:
        yield receiver


@pytest.fixture
def settings(database_url: str, tmp_path: Path, sms: HttpReceiver,
             mail: SmtpServer) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", sms_url=sms.url,
                    smtp_url=mail.url, delivery_timeout_seconds=2)


@pytest.fixture
def world(ctx: ServiceContext, hook: HttpReceiver) -> World:
    made = make_world(ctx)
    accounts.create_account(ctx, None, name="reachable", role=Role.MERCHANT_AGENT,
                            store_id="s-tmall", phone="13800138000",
                            email="reachable@example.com")
    webhooks.register(ctx, made.owner, "s-tmall", hook.url, ["work_order.created"])
    return made


def _open_then(ctx: ServiceContext, world: World, *, fail: bool) -> None:
    order = world.order()

    def run(uow: UnitOfWork) -> WorkOrder:
        now = ctx.clock.now()
        wo = WorkOrder.open(work_order_id=new_id("wo"), order=order,
                            category=Category.DAMAGED, claim="arrived broken",
                            requested_remedy=None, actor=world.consumer, now=now,
                            policy=ctx.policy, order_has_open_work_order=False)
        commit_change(ctx, uow, wo, None, now)  # the card and the webhook event staged
        if fail:
            raise Boom("something after the work order failed")
        return wo

    if fail:
        with pytest.raises(Boom):
            ctx.write(run)
    else:
        ctx.write(run)


def _rows(container: Container) -> dict[str, int]:
    with container.engine.connect() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (t.outbox, t.deliveries, t.inbox, t.work_orders)}


def test_a_change_that_rolls_back_sends_nothing(container: Container, ctx: ServiceContext,
                                                world: World, sms: HttpReceiver,
                                                mail: SmtpServer, hook: HttpReceiver) -> None:
    _open_then(ctx, world, fail=True)
    assert dispatch_due(ctx, senders(container.settings)) == 0
    assert _rows(container) == {"outbox": 0, "deliveries": 0, "inbox": 0, "work_orders": 0}
    assert (sms.received, mail.messages, hook.received) == ([], [], [])

    # The same change committed goes out on every channel (the test can see a send).
    _open_then(ctx, world, fail=False)
    assert dispatch_due(ctx, senders(container.settings)) == 3
    assert len(sms.wait_for(1)) == 1
    assert len(mail.wait_for(1)) == 1
    assert len(hook.wait_for(1)) == 1
    assert _rows(container)["outbox"] == 3
