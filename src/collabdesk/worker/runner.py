"""The deadline runner: a background thread that fires due timers every poll interval."""

from __future__ import annotations

import logging
import threading

from collabdesk.services.context import ServiceContext
from collabdesk.services.timers import fire_due_timers

log = logging.getLogger("collabdesk.runner")


class DeadlineRunner:
    def __init__(self, ctx: ServiceContext, poll_seconds: float) -> None:
        self._ctx = ctx
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="deadline-runner", daemon=True)
        # Serialises firing with `POST /v1/test-clock/advance`, which fires inline.
        self.lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> int:
        with self.lock:
            return fire_due_timers(self._ctx)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                fired = self.run_once()
                if fired:
                    log.info("fired %d timer(s)", fired)
            except Exception:  # keep the runner alive; the next tick retries
                log.exception("deadline runner tick failed")
            self._stop.wait(self._poll)
