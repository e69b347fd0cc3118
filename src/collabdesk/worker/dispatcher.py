"""The outbox dispatcher: a thread that sends what the outbox holds (services/outbox.py)
and waits for the earliest of: the next message's due time, a poll interval, a wake-up.

Wake-ups come from this process's commits (`ctx.signals`, "outbox") and, on PostgreSQL,
from every process's (`NOTIFY collabdesk_outbox`, heard on a listening connection), so a
new message goes out within milliseconds of its commit. On SQLite the dispatcher first
takes the database's outbox lock file: one dispatcher sends, and, holding the lock, it
voids the leases a crashed predecessor left, so their messages go out at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine

from collabdesk.adapters.db.wakeup import OUTBOX_CHANNEL, TimerListener
from collabdesk.adapters.runner_lock import RunnerFileLock, lock_path_for
from collabdesk.bootstrap import Container, senders
from collabdesk.domain.records import Channel
from collabdesk.services import outbox
from collabdesk.services.context import ServiceContext
from collabdesk.services.ports import Sender

from . import delivery_metrics
from .runner import Doorbell, join_all, relay_wakeups

log = logging.getLogger("collabdesk.dispatcher")

PURGE_EVERY_SECONDS = 3600.0


class OutboxDispatcher:
    def __init__(self, ctx: ServiceContext, channels: Mapping[Channel, Sender], *,
                 poll_seconds: float = 1.0, batch_size: int = outbox.BATCH_SIZE,
                 lease_seconds: float = outbox.LEASE_SECONDS,
                 engine: Engine | None = None, listen: bool = False,
                 lock_path: Path | None = None, name: str = "outbox-dispatcher") -> None:
        self._ctx = ctx
        self.channels = channels
        self._poll = poll_seconds
        self._batch = batch_size
        self._lease = lease_seconds
        self._stop = threading.Event()
        self._bell = Doorbell()
        self._file_lock = (RunnerFileLock(lock_path, "outbox dispatcher") if lock_path
                           else None)
        self._listener = (TimerListener(engine, channel=OUTBOX_CHANNEL,
                                        application_name="collabdesk-outbox-listener")
                          if listen and engine is not None else None)
        self._threads = [threading.Thread(target=self._loop, daemon=True, name=name)]
        if self._listener is not None:
            self._threads.append(threading.Thread(target=self._listen, daemon=True,
                                                  name=f"{name}-listener"))
        # Serialises sending with `POST /v1/test-clock/advance`, which sends inline.
        self.lock = threading.Lock()
        self._last_purge = float("-inf")
        self.sent = 0  # attempts made by this dispatcher, for the curious (and the tests)

    @classmethod
    def for_container(cls, container: Container) -> OutboxDispatcher:
        engine = container.engine
        settings = container.settings
        postgres = engine.dialect.name == "postgresql"
        lock = lock_path_for(engine.url.render_as_string(hide_password=False))
        return cls(container.ctx, senders(settings), poll_seconds=settings.timer_poll_seconds,
                   batch_size=settings.outbox_batch_size,
                   lease_seconds=settings.outbox_lease_seconds, engine=engine, listen=postgres,
                   lock_path=lock.with_name(lock.name.replace(".runner.", ".outbox."))
                   if lock else None)

    def start(self) -> None:
        self._ctx.signals.subscribe("outbox", self._bell.ring)
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        self._bell.ring()

    def join(self, timeout: float | None = None) -> bool:
        done = join_all(self._threads, timeout)
        if done:
            self._ctx.signals.unsubscribe("outbox", self._bell.ring)
            if self._file_lock is not None:
                self._file_lock.release()
            if self._listener is not None:
                self._listener.close()
        return done

    def stop(self, timeout: float = 10.0) -> bool:
        self.request_stop()
        return self.join(timeout)

    def wake(self) -> None:
        self._bell.ring()

    def run_once(self) -> int:
        """Send what is due now, batch after batch (stops between batches when asked)."""
        with self.lock:
            made = outbox.dispatch_due(self._ctx, self.channels, batch_size=self._batch,
                                       lease_seconds=self._lease,
                                       observe=delivery_metrics.observe,
                                       should_stop=self._stop.is_set)
        self.sent += made
        return made

    def _loop(self) -> None:
        if self._file_lock is not None:
            if not self._file_lock.acquire(self._stop):
                return
            try:
                if released := outbox.release_leases(self._ctx):
                    log.info("released %d message lease(s) left by a previous dispatcher",
                             released)
            except Exception:
                log.exception("could not release old leases; they run out by themselves")
        while not self._stop.is_set():
            seen = self._bell.rings
            try:
                made = self.run_once()
                self._maybe_purge()
                timeout = 0.0 if made else self._next_wait()
            except Exception:  # keep the dispatcher alive; the next tick retries
                log.exception("outbox dispatcher tick failed")
                timeout = self._poll
            if timeout > 0:
                self._bell.wait(seen, timeout)

    def _next_wait(self) -> float:
        due = self._ctx.read(lambda uow: uow.outbox.next_due())
        if due is None:
            return self._poll
        wait = (due - self._ctx.clock.now()).total_seconds()
        # Due already but not claimed: another dispatcher holds it (its lease, or its
        # transaction): look again after a poll interval, not at once.
        return self._poll if wait <= 0 else min(self._poll, wait + 0.002)

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            purged = 0
            while (batch := outbox.purge_done(self._ctx)) > 0 and not self._stop.is_set():
                purged += batch
            if purged:
                log.info("purged %d delivered message(s) older than %s", purged,
                         outbox.KEEP_DONE)

    def _listen(self) -> None:
        assert self._listener is not None
        relay_wakeups(self._listener, self._stop, self._bell, "outbox", self._poll)
