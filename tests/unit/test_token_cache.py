"""The token cache (services/context.py): how long an account is remembered, and that a
change made through this process is honoured at once, even by a lookup already under way."""

from __future__ import annotations

import time

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.records import Account
from collabdesk.domain.states import Role
from collabdesk.services import accounts
from collabdesk.services.context import TokenCache
from collabdesk.settings import Settings
from tests.builders import make_world
from tests.conftest import START
from tests.fakes import fake_context

ACCOUNT = Account("acc-1", "agent", Role.MERCHANT_AGENT, "s-1", None, None, None, True, START)


def test_an_account_is_remembered_for_the_ttl_and_then_forgotten() -> None:
    cache = TokenCache(ttl=0.2)
    cache.put("h", ACCOUNT, cache.generation)
    assert cache.get("h") is ACCOUNT
    time.sleep(0.25)
    assert cache.get("h") is None


def test_an_account_read_before_a_clear_is_not_cached_after_it() -> None:
    cache = TokenCache(ttl=60)
    read_at = cache.generation  # a lookup starts reading the account...
    cache.clear()  # ...the permission is withdrawn meanwhile...
    cache.put("h", ACCOUNT, read_at)  # ...and its stale result arrives
    assert cache.get("h") is None
    cache.put("h", ACCOUNT, cache.generation)
    assert cache.get("h") is ACCOUNT


def test_a_ttl_of_zero_caches_nothing_and_a_full_cache_starts_over() -> None:
    off = TokenCache(ttl=0)
    off.put("h", ACCOUNT, off.generation)
    assert off.get("h") is None
    small = TokenCache(ttl=60, max_entries=2)
    for key in ("a", "b", "c"):
        small.put(key, ACCOUNT, small.generation)
    assert [small.get(k) is not None for k in ("a", "b", "c")] == [False, False, True]


def test_withdrawing_the_permission_takes_effect_at_once_in_this_process() -> None:
    ctx = fake_context(FixedClock(START))
    world = make_world(ctx)
    token = world.tokens["agent"]
    assert accounts.authenticate(ctx, token).handles_work_orders is True  # now cached
    accounts.set_staff_permission(ctx, world.owner, "s-tmall", world.agent.id, False)
    assert accounts.authenticate(ctx, token).handles_work_orders is False


def test_a_token_is_remembered_five_seconds_by_default() -> None:
    assert Settings().token_cache_seconds == 5.0
