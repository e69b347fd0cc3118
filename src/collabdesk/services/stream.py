"""Live inbox streams (`GET /v1/stream`), the part without asyncio: which rows of a poll
are new, and the reads a stream makes. The hub that polls and fans out is api/stream_hub.py.

One poll per process reads every recipient's items stored since the newest one seen,
minus a look-back: `stored_at` is taken at the insert, and a transaction that inserted
earlier may commit later than one whose rows were already read. Rows the look-back
reads again are recognised by id; ids older than the look-back are forgotten, since no
read reaches back to them. The look-back also covers clock differences between the API
processes that stamp `stored_at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from collabdesk.domain.records import InboxItem

from .context import ServiceContext

LOOKBACK = timedelta(seconds=5)
POLL_BATCH = 1000
MAX_SEEN = 100_000  # ids remembered; past it the oldest go (a burst may then repeat some)
BACKLOG_PAGE = 500
BACKLOG_PAGES = 10  # a resume sends at most this many pages, then the stream ends


class NewItems:
    """The new items among the rows successive polls of `stored_since` return.

    `next_read()` says what to read; `take(rows)` answers the items not seen before, in
    storing order. A full batch means more may wait: the next read continues from the
    newest row (no look-back), reading a larger batch if all its rows share one instant.
    """

    def __init__(self, start: datetime, *, lookback: timedelta = LOOKBACK,
                 batch: int = POLL_BATCH, max_seen: int = MAX_SEEN) -> None:
        self.cursor = start  # the newest stored_at read (or the start)
        self.lookback = lookback
        self.batch = batch
        self.max_seen = max_seen
        self.more = False  # the last read was full: read again at once
        self._limit = batch
        self._seen: dict[str, datetime] = {}  # id -> stored_at, in the order first read

    def next_read(self) -> tuple[datetime, int]:
        """(since, limit) of the next `stored_since`."""
        since = self.cursor if self.more else self.cursor - self.lookback
        return since, self._limit

    def take(self, rows: Sequence[tuple[datetime, InboxItem]]) -> list[InboxItem]:
        before = self.cursor
        new: list[InboxItem] = []
        for stored_at, item in rows:
            if stored_at > self.cursor:
                self.cursor = stored_at
            if item.id not in self._seen:
                self._seen[item.id] = stored_at
                new.append(item)
        full = len(rows) >= self._limit
        if full and self.more and self.cursor == before:
            self._limit *= 2  # a whole batch stored at one instant: read past it
        elif not full:
            self._limit = self.batch
        self.more = full
        self._forget()
        return new

    def prime(self, rows: Sequence[tuple[datetime, InboxItem]]) -> None:
        """Note rows as seen without answering them (what was there before any stream)."""
        self.take(rows)

    def _forget(self) -> None:
        horizon = self.cursor - self.lookback
        for item_id, stored_at in list(self._seen.items()):
            if stored_at >= horizon and len(self._seen) <= self.max_seen:
                break  # the rest are newer (roughly: in the order first read)
            del self._seen[item_id]

    def __len__(self) -> int:
        return len(self._seen)


def stored_since(ctx: ServiceContext, since: datetime, limit: int
                 ) -> list[tuple[datetime, InboxItem]]:
    """Every recipient's items stored at or after `since` (the hub's poll)."""
    return ctx.read(lambda uow: uow.inbox.stored_since(since, limit))


def backlog(ctx: ServiceContext, recipient_id: str, last_id: str,
            limit: int = BACKLOG_PAGE) -> list[InboxItem] | None:
    """The recipient's items stored after their item `last_id`, oldest first, at most
    `limit`; None when `last_id` is none of theirs (another's id reveals nothing)."""
    rows = ctx.read(lambda uow: uow.inbox.stored_after(recipient_id, last_id, limit))
    return None if rows is None else [item for _, item in rows]
