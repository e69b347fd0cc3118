"""Live streams without HTTP: which polled rows are new (services/stream.py), and the hub
that polls once per process and hands each item to its recipient's streams
(api/stream_hub.py), over the in-memory fakes; and the database's commits ringing it.
The real server's streams are tested in tests/e2e/test_real_server_stream.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from collabdesk.adapters.clock import FixedClock
from collabdesk.api.stream_hub import StreamHub, Subscription
from collabdesk.domain.records import InboxItem, InboxKind
from collabdesk.services.context import ServiceContext
from collabdesk.services.stream import NewItems, backlog
from tests.builders import make_world
from tests.conftest import START
from tests.fakes import fake_context

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def item(item_id: str, recipient: str = "acc-1") -> InboxItem:
    return InboxItem(item_id, recipient, InboxKind.WORK_ORDER_CREATED, "wo-1", "new card",
                     START)


def rows(*pairs: tuple[float, str]) -> list[tuple[datetime, InboxItem]]:
    """(seconds after T0, id) -> what `stored_since` answers."""
    return [(T0 + s * SECOND, item(i)) for s, i in pairs]


def ids(items: list[InboxItem]) -> list[str]:
    return [i.id for i in items]


# ---- which rows are new ----------------------------------------------------------------------

def test_the_look_back_rereads_recent_rows_and_answers_each_item_once() -> None:
    new = NewItems(T0, lookback=5 * SECOND, batch=100)
    assert new.next_read() == (T0 - 5 * SECOND, 100)
    assert ids(new.take(rows((1, "a"), (2, "b")))) == ["a", "b"]
    assert new.next_read() == (T0 - 3 * SECOND, 100)  # the newest row, minus the look-back
    # A transaction that stored "x" at 1.5 s committed only now: the look-back finds it.
    assert ids(new.take(rows((1, "a"), (1.5, "x"), (2, "b"), (3, "c")))) == ["x", "c"]
    assert ids(new.take(rows((1.5, "x"), (2, "b"), (3, "c")))) == []


def test_ids_older_than_the_look_back_are_forgotten() -> None:
    new = NewItems(T0, lookback=5 * SECOND, batch=100)
    new.take(rows((1, "a"), (2, "b")))
    assert len(new) == 2
    new.take(rows((10, "c")))  # the next read starts at 5 s: a and b can never come back
    assert len(new) == 1
    assert new.next_read()[0] == T0 + 5 * SECOND


def test_the_memory_of_ids_is_bounded() -> None:
    new = NewItems(T0, lookback=timedelta(hours=1), batch=100, max_seen=3)
    new.take(rows((1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")))
    assert len(new) == 3


def test_a_full_batch_is_followed_at_once_from_the_newest_row() -> None:
    new = NewItems(T0, lookback=5 * SECOND, batch=3)
    assert ids(new.take(rows((1, "a"), (2, "b"), (3, "c")))) == ["a", "b", "c"]
    assert new.more
    assert new.next_read() == (T0 + 3 * SECOND, 3)  # no look-back while catching up
    assert ids(new.take(rows((3, "c"), (4, "d")))) == ["d"]
    assert not new.more
    assert new.next_read() == (T0 - 1 * SECOND, 3)


def test_a_batch_all_stored_at_one_instant_is_read_past_with_a_larger_limit() -> None:
    new = NewItems(T0, lookback=5 * SECOND, batch=2)
    new.take(rows((1, "a"), (1, "b")))  # add_many stamps one instant on all its rows
    assert new.next_read() == (T0 + SECOND, 2)
    assert ids(new.take(rows((1, "a"), (1, "b")))) == []  # no progress...
    assert new.next_read() == (T0 + SECOND, 4)  # ...so a larger batch
    assert ids(new.take(rows((1, "a"), (1, "b"), (1, "c")))) == ["c"]
    assert new.next_read() == (T0 - 4 * SECOND, 2)


def test_a_resume_reads_only_the_recipients_items_after_theirs() -> None:
    ctx = fake_context(FixedClock(START))
    ctx.write(lambda uow: uow.inbox.add_many(
        [item("i1"), item("other", "acc-2"), item("i2"), item("i3")]))
    assert ids(backlog(ctx, "acc-1", "i1") or []) == ["i2", "i3"]
    assert ids(backlog(ctx, "acc-1", "i1", limit=1) or []) == ["i2"]
    assert backlog(ctx, "acc-1", "i3") == []
    assert backlog(ctx, "acc-1", "other") is None  # another's id reveals nothing
    assert backlog(ctx, "acc-1", "nope") is None


# ---- the hub ---------------------------------------------------------------------------------

def store(ctx: ServiceContext, *items: InboxItem) -> None:
    ctx.write(lambda uow: uow.inbox.add_many(list(items)))


async def batch_of(subscription: Subscription, timeout: float = 2.0) -> list[str]:
    got = await asyncio.wait_for(subscription.next_batch(), timeout)
    return ids(got or [])


def run(test: Callable[[StreamHub, ServiceContext], Awaitable[None]],
        **hub_options: float) -> None:
    async def main() -> None:
        ctx = fake_context(FixedClock(START))
        hub = StreamHub(ctx, **{"poll_seconds": 0.05, **hub_options})  # type: ignore[arg-type]
        try:
            await test(hub, ctx)
        finally:
            await hub.aclose()
    asyncio.run(main())


def test_each_item_reaches_only_its_recipients_streams() -> None:
    async def test(hub: StreamHub, ctx: ServiceContext) -> None:
        store(ctx, item("before"))  # stored before any stream: never sent
        first, second = await hub.subscribe("acc-1"), await hub.subscribe("acc-1")
        other = await hub.subscribe("acc-2")
        store(ctx, item("a"), item("b", "acc-2"))
        assert await batch_of(first) == ["a"]
        assert await batch_of(second) == ["a"]
        assert await batch_of(other) == ["b"]
    run(test)


def test_one_poll_serves_every_stream_and_a_signal_polls_at_once() -> None:
    async def test(hub: StreamHub, ctx: ServiceContext) -> None:
        subscriptions = [await hub.subscribe(f"acc-{n % 10}") for n in range(100)]
        polls = hub.polls
        await asyncio.sleep(0.5)
        assert hub.polls - polls <= 3  # one poll per interval, not one per stream
        # A signal from this process's commit wakes the hub before its interval ends.
        polls = hub.polls
        store(ctx, item("now"))
        ctx.signals.fire({"inbox"})  # as a unit of work of this process does on commit
        got = await batch_of(subscriptions[1], timeout=0.5)
        assert got == ["now"]
        assert hub.polls - polls <= 1
    run(test, poll_seconds=30)


def test_a_stream_that_falls_too_far_behind_is_closed() -> None:
    async def test(hub: StreamHub, ctx: ServiceContext) -> None:
        slow = await hub.subscribe("acc-1")
        store(ctx, *(item(f"i{n}") for n in range(4)))
        for _ in range(100):
            if slow.closed:
                break
            await asyncio.sleep(0.02)
        assert slow.overflowed
        assert await slow.next_batch() is None  # the client resumes with Last-Event-ID
        assert hub.subscriber_count() == 0
    run(test, queue_size=3)


def test_the_hub_stops_when_its_last_stream_goes_and_restarts_with_the_next() -> None:
    async def test(hub: StreamHub, ctx: ServiceContext) -> None:
        assert not hub.running
        subscription = await hub.subscribe("acc-1")
        assert hub.running
        hub.unsubscribe(subscription)
        for _ in range(100):
            if not hub.running:
                break
            await asyncio.sleep(0.02)
        assert not hub.running
        store(ctx, item("while-idle"))
        again = await hub.subscribe("acc-1")
        store(ctx, item("after"))
        assert await batch_of(again) == ["after"]
    run(test)


def test_closing_the_hub_ends_every_stream() -> None:
    async def test(hub: StreamHub, ctx: ServiceContext) -> None:
        subscription = await hub.subscribe("acc-1")
        await hub.aclose()
        assert not hub.running
        assert await subscription.next_batch() is None
    run(test)


def test_a_failing_poll_fails_the_streams_waiting_for_it() -> None:
    async def test(hub: StreamHub, ctx: ServiceContext) -> None:
        def broken(*_: object, **__: object) -> None:
            raise OSError("database is down")
        ctx.uow = broken  # type: ignore[assignment]
        with pytest.raises(OSError, match="database is down"):
            await hub.subscribe("acc-1")
        assert hub.subscriber_count() == 0
    run(test)


# ---- the real database rings the hub ---------------------------------------------------------

def test_a_commit_with_new_inbox_items_rings_the_inbox_signal(ctx: ServiceContext) -> None:
    """bootstrap wires the units of work to `ctx.signals`: the hub of this process hears of
    a new card at once, without waiting for its poll."""
    world = make_world(ctx)
    rung: list[str] = []
    ctx.signals.subscribe("inbox", lambda: rung.append("inbox"))
    world.open()
    assert rung == ["inbox"]
