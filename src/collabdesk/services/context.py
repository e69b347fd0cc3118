"""What every use case needs, wired once by bootstrap.py and passed in."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from collabdesk.domain.errors import ConcurrentUpdate
from collabdesk.domain.policy import Policy

from .evidence_port import EvidenceStore
from .ports import Clock, UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")


def new_id(prefix: str) -> str:
    """Roughly time-ordered, unguessable ids: prefix, milliseconds, 48 random bits."""
    return f"{prefix}_{time.time_ns() // 1_000_000:011x}{secrets.token_hex(6)}"


@dataclass
class ServiceContext:
    uow: UnitOfWorkFactory
    clock: Clock
    policy: Policy
    evidence_store: EvidenceStore
    evidence_max_bytes: int = 20 * 1024 * 1024
    timer_batch_size: int = 200

    def write(self, fn: Callable[[UnitOfWork], T], *, attempts: int = 3) -> T:
        """Run `fn` in a write unit of work and commit; rerun it when a guarded update lost
        a race, so the loser is judged again on the winner's state."""
        for attempt in range(attempts):
            try:
                with self.uow(write=True) as uow:
                    result = fn(uow)
                    uow.commit()
                    return result
            except ConcurrentUpdate:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[UnitOfWork], T]) -> T:
        with self.uow(write=False) as uow:
            return fn(uow)
