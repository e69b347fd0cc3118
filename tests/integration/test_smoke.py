"""The happy path through the services on both databases."""

from __future__ import annotations

import pytest

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.errors import Unauthenticated
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role, State
from collabdesk.domain.values import Remedy, RemedyType
from collabdesk.services import accounts
from collabdesk.services import work_orders as wo
from collabdesk.services.context import ServiceContext
from collabdesk.services.timers import fire_due_timers
from tests.builders import make_world


def test_unanswered_work_order_times_out_with_evidence_waived(
        ctx: ServiceContext, clock: FixedClock) -> None:
    world = make_world(ctx)
    wo_id = world.open()
    clock.advance(24 * 3600)
    assert fire_due_timers(ctx) == 3  # two reminders, then the timeout
    got = wo.get_work_order(ctx, world.triage, wo_id)
    assert got.state is State.IN_ADJUDICATION
    assert got.evidence_waived


def test_agreed_reply_asks_the_consumer(ctx: ServiceContext, clock: FixedClock) -> None:
    world = make_world(ctx)
    wo_id = world.open()
    clock.advance(60)
    world.contact(wo_id)
    got = wo.reply(ctx, world.agent, wo_id, option=ReplyOption.RESOLVED_AGREED,
                   statement=None, agreement=Remedy(RemedyType.REFUND, 500), evidence_ids=())
    assert got.state is State.AWAITING_CONSUMER



def test_an_account_with_login_and_password_signs_in(ctx: ServiceContext) -> None:
    account, _ = accounts.create_account(ctx, None, name="Li Wei", role=Role.CONSUMER,
                                         login="li.wei", password="correct horse")
    assert accounts.sign_in(ctx, "li.wei", "correct horse").id == account.id


@pytest.mark.parametrize(("login", "password"), [("li.wei", "wrong horse"),
                                                 ("nobody", "correct horse")])
def test_a_wrong_login_or_password_does_not_sign_in(ctx: ServiceContext, login: str,
                                                    password: str) -> None:
    accounts.create_account(ctx, None, name="Li Wei", role=Role.CONSUMER, login="li.wei",
                            password="correct horse")
    with pytest.raises(Unauthenticated):
        accounts.sign_in(ctx, login, password)
