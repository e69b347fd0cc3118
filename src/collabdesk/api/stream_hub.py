"""The process's one reader of new inbox items, and the open streams it feeds
(`GET /v1/stream`, api/routes/stream.py).

One asyncio task per process polls `stored_since` (services/stream.py says which rows are
new) every `COLLABDESK_STREAM_POLL_SECONDS`, or at once when a unit of work of this
process committed inbox items (the "inbox" signal); the read runs in a worker thread, as
the database layer is sync. Each new item goes to the subscriptions of its recipient:
one database read per poll, whatever the number of streams. Items committed by other
processes (`collabdesk worker`, `serve --workers N`) arrive by the poll.

The task starts with the first subscriber and ends when none is left (and at app
shutdown). A new subscriber waits for a poll that started after it asked, then
registers: it gets exactly the items the hub finds after that, i.e. those committed
after the stream opened. A subscription holds at most `queue_size` items; one that
falls that far behind is closed, and its client resumes with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from anyio import to_thread

from collabdesk.domain.records import InboxItem
from collabdesk.services import stream as svc
from collabdesk.services.context import ServiceContext

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class Subscription:
    """One open stream's items, pushed by the hub (on the event loop), taken in batches."""

    def __init__(self, account_id: str, queue_size: int = QUEUE_SIZE) -> None:
        self.account_id = account_id
        self.queue_size = queue_size
        self.closed = False
        self.overflowed = False
        self._items: deque[InboxItem] = deque()
        self._wake = asyncio.Event()

    def push(self, item: InboxItem) -> bool:
        """Queue `item`; False (and closed, its queue dropped) when the queue was full."""
        if self.closed:
            return False
        if len(self._items) >= self.queue_size:
            self.overflowed = True
            self._items.clear()
            self.close()
            return False
        self._items.append(item)
        self._wake.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next_batch(self) -> list[InboxItem] | None:
        """The items queued since the last call, waiting for one; None once closed."""
        while not self._items:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        batch = list(self._items)
        self._items.clear()
        return batch


class StreamHub:
    def __init__(self, ctx: ServiceContext, *, poll_seconds: float = 1.0,
                 heartbeat_seconds: float = 15.0, lookback: timedelta = svc.LOOKBACK,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.lookback = lookback
        self.queue_size = queue_size
        self.polls = 0  # reads done (tests, diagnostics)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._joining = 0  # subscribers waiting for their first poll
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._next_poll: asyncio.Future[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    async def subscribe(self, account_id: str) -> Subscription:
        """A subscription to `account_id`'s items committed from now on (see the module
        docstring); raises what the poll it waited for raised (the database is down)."""
        self._joining += 1
        try:
            if self._task is None:
                self._start()
            assert self._next_poll is not None
            polled = self._next_poll
            self._wake.set()
            await asyncio.shield(polled)
        finally:
            self._joining -= 1
        subscription = Subscription(account_id, self.queue_size)
        self._subscribers.setdefault(account_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        subs = self._subscribers.get(subscription.account_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscribers[subscription.account_id]

    async def aclose(self) -> None:
        """Stop polling and close every subscription (the app is shutting down)."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subs in list(self._subscribers.values()):
            for subscription in list(subs):
                self.unsubscribe(subscription)

    # ---- the poller ----------------------------------------------------------------------

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._next_poll = loop.create_future()
        wake = self._wake

        def ring() -> None:  # called by whichever thread committed
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(wake.set)

        self.ctx.signals.subscribe("inbox", ring)
        self._task = loop.create_task(self._run(ring), name="collabdesk-stream-hub")

    async def _run(self, ring: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        tracker = svc.NewItems(datetime.now(UTC), lookback=self.lookback)
        try:
            while True:
                if not tracker.more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()
                if not self._subscribers and not self._joining:
                    return  # idle: the next subscriber starts a new poller
                done, self._next_poll = self._next_poll, loop.create_future()
                assert done is not None
                try:
                    since, limit = tracker.next_read()
                    rows = await to_thread.run_sync(svc.stored_since, self.ctx, since, limit)
                except Exception as exc:
                    log.warning("stream poll failed: %s", exc)
                    tracker.more = False
                    _fail(done, exc)
                    continue
                except BaseException:  # cancelled (shutdown) during the read
                    _fail(done, RuntimeError("the stream hub stopped"))
                    raise
                self.polls += 1
                self._route(tracker.take(rows))
                done.set_result(None)
        finally:
            self.ctx.signals.unsubscribe("inbox", ring)
            self._task = None
            if self._next_poll is not None and not self._next_poll.done():
                _fail(self._next_poll, RuntimeError("the stream hub stopped"))
            self._next_poll = None

    def _route(self, items: list[InboxItem]) -> None:
        for item in items:
            for subscription in list(self._subscribers.get(item.recipient_id, ())):
                if not subscription.push(item):
                    log.info("stream of %s fell %d items behind: closed",
                             subscription.account_id, subscription.queue_size)
                    self.unsubscribe(subscription)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    future.set_exception(exc)
    future.add_done_callback(lambda f: f.exception())  # retrieved: no "never retrieved"
