"""What every use case needs, wired once by bootstrap.py and passed in."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from collabdesk.domain.errors import ConcurrentUpdate
from collabdesk.domain.policy import Policy
from collabdesk.domain.records import Account

from .evidence_port import EvidenceStore
from .ports import Clock, UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")


def new_id(prefix: str) -> str:
    """Roughly time-ordered, unguessable ids: prefix, milliseconds, 48 random bits."""
    return f"{prefix}_{time.time_ns() // 1_000_000:011x}{secrets.token_hex(6)}"


class TokenCache:
    """Recently seen bearer tokens (by hash) and their accounts, for `ttl` seconds, so a
    request costs no database read to say who is calling. A token revoked or an account
    changed elsewhere is honoured after at most `ttl` seconds; changes made through this
    process clear the cache at once. Unknown tokens are never cached. `ttl` 0 disables it.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Account]] = {}
        self._lock = threading.Lock()
        # Moves on every clear: an account read before a clear is not cached after it.
        self.generation = 0

    def get(self, token_hash: str) -> Account | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            self._entries.pop(token_hash, None)
            return None
        return entry[1]

    def put(self, token_hash: str, account: Account, generation: int) -> None:
        """Remember `account`, read when the cache was at `generation`; dropped if the
        cache was cleared since (the read may predate the change that cleared it)."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a flood of distinct tokens costs no memory
            self._entries[token_hash] = (time.monotonic() + self.ttl, account)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


class Signals:
    """In-process wake-ups raised after a commit: "outbox" (messages to send) and
    "inbox" (new in-app notifications). Subscribers must return at once (they ring a
    bell); other processes hear of the same commits through the database (NOTIFY on
    PostgreSQL) or their polls."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable[[], None]]] = {}

    def subscribe(self, name: str, callback: Callable[[], None]) -> None:
        self._subscribers.setdefault(name, []).append(callback)

    def unsubscribe(self, name: str, callback: Callable[[], None]) -> None:
        if callback in self._subscribers.get(name, []):
            self._subscribers[name].remove(callback)

    def fire(self, names: set[str]) -> None:
        for name in names:
            for callback in list(self._subscribers.get(name, [])):
                callback()


@dataclass(frozen=True)
class DeliverySetup:
    """What the notification services need to know of the channels: whether SMS and
    email are configured (diagnostics), and the server key webhook secrets derive from."""

    sms_configured: bool = False
    smtp_configured: bool = False
    webhook_key: bytes = b"collabdesk-tests-only-key"


@dataclass
class ServiceContext:
    uow: UnitOfWorkFactory
    clock: Clock
    policy: Policy
    evidence_store: EvidenceStore
    evidence_max_bytes: int = 20 * 1024 * 1024
    timer_batch_size: int = 200
    tokens: TokenCache = field(default_factory=TokenCache)
    signals: Signals = field(default_factory=Signals)
    delivery: DeliverySetup = field(default_factory=DeliverySetup)

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
