"""A process of loops (the deadline runner today; the outbox dispatcher later), run until
SIGTERM or SIGINT.

The first signal asks every loop to stop after what it is doing (a runner thread finishes
its current `fire_due_timers` call, whose transactions commit batch by batch); a second
signal exits at once, which is safe too: the transaction in flight rolls back and its
timers stay due for the next runner.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

log = logging.getLogger("collabdesk.worker")


class Loop(Protocol):
    """What the worker process runs: threads started, asked to stop, joined."""

    def start(self) -> None: ...

    def request_stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> bool: ...


class StopSignals:
    """SIGTERM/SIGINT noted from the moment this is made (a worker makes it before its
    slow start, so a stop asked during the start is a clean stop too). A second signal
    exits at once. `restore` puts the previous handlers back."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous = {sig: signal.signal(sig, self._on_signal)
                          for sig in (signal.SIGTERM, signal.SIGINT)}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # No locks here (the main thread may hold one): note it, the main loop acts.
        self.received.append(signum)
        if len(self.received) > 1:
            os.write(2, f"{signal.Signals(signum).name} again: stopping now (the batch in "
                        "flight rolls back)\n".encode())
            os._exit(128 + signum)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_until_signalled(loops: Sequence[Loop], *, stop: threading.Event | None = None,
                        signals: StopSignals | None = None) -> int:
    """Start `loops`, wait for SIGTERM/SIGINT (or `stop`), stop them; the exit status."""
    stop = stop or threading.Event()
    signals = signals or StopSignals()
    received = signals.received
    try:
        for loop in loops:
            loop.start()
        while not received and not stop.is_set():
            time.sleep(0.2)  # a signal cuts the sleep short
        if received:
            name = signal.Signals(received[0]).name
            log.info("%s: finishing the current batch, then stopping (%s again stops at "
                     "once)", name, name)
        for loop in loops:
            loop.request_stop()
        for loop in loops:
            while not loop.join(timeout=1.0):
                pass
    finally:
        signals.restore()
    return 0
