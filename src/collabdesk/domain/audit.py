"""The per-work-order hash chains (rules.md §10): each event's hash covers the one before.

A work order has two chains. The `all` chain holds what every party of the case may see;
the `platform` chain holds what only the platform (and each event's own author) may see,
such as a platform-only note, so that a party's view of its chain is whole and gap-free
and reveals nothing of the other. Each chain's head (length and last hash) is kept on the
work order row in the same transaction as the events, which anchors the chain: deleting
its newest events is detected as surely as editing one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .values import DomainEvent, utc_iso

ALL = "all"
PLATFORM = "platform"
VISIBILITIES = (ALL, PLATFORM)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(work_order_id: str, seq: int, at: str, actor_id: str, type_: str,
               data_json: str, prev_hash: str | None) -> str:
    material = canonical_json([work_order_id, seq, at, actor_id, type_, data_json, prev_hash])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def chain_key(work_order_id: str, visibility: str) -> str:
    """What the hashes of a chain are bound to: the work order, and which of its chains
    (the `all` chain keeps the bare id, so hashes made before there were two still hold)."""
    return work_order_id if visibility == ALL else f"{work_order_id}#{visibility}"


@dataclass(frozen=True)
class ChainLink:
    work_order_id: str
    seq: int
    at: str
    actor_id: str
    type: str
    data_json: str
    prev_hash: str | None
    hash: str
    visibility: str = ALL


@dataclass(frozen=True)
class ChainHead:
    """How long a chain is and the hash of its newest event (None while empty)."""

    length: int = 0
    hash: str | None = None


def extend(work_order_id: str, visibility: str, head: ChainHead,
           events: Sequence[DomainEvent]) -> tuple[list[ChainLink], ChainHead]:
    """The links that append `events` to the chain ending at `head`, and its new head."""
    links: list[ChainLink] = []
    seq, prev = head.length, head.hash
    key = chain_key(work_order_id, visibility)
    for ev in events:
        seq += 1
        at, data = utc_iso(ev.at), canonical_json(ev.data)
        digest = event_hash(key, seq, at, ev.actor_id, ev.type, data, prev)
        links.append(ChainLink(work_order_id, seq, at, ev.actor_id, ev.type, data, prev,
                               digest, visibility))
        prev = digest
    return links, ChainHead(seq, prev)


def find_break(links: Iterable[ChainLink], anchor: ChainHead | None = None) -> str | None:
    """None when the chain is intact, else a sentence naming the first bad link.

    With `anchor` (the head kept on the work order), a chain that lost its newest
    events, or gained some the anchor does not know, is broken too.
    """
    prev: str | None = None
    expected_seq = 1
    for link in links:
        if link.seq != expected_seq:
            return f"event seq {link.seq} found where {expected_seq} was expected"
        if link.prev_hash != prev:
            return f"event {link.seq}: prev_hash does not match the hash of event {link.seq - 1}"
        recomputed = event_hash(chain_key(link.work_order_id, link.visibility), link.seq,
                                link.at, link.actor_id, link.type, link.data_json,
                                link.prev_hash)
        if recomputed != link.hash:
            return f"event {link.seq} ({link.type}): content does not match its hash"
        prev = link.hash
        expected_seq += 1
    if anchor is None:
        return None
    length = expected_seq - 1
    if length < anchor.length:
        return (f"the chain ends at event {length} but the work order records "
                f"{anchor.length} events: the newest were deleted")
    if length > anchor.length or prev != anchor.hash:
        return (f"the chain's newest event ({length}) does not match the head the work "
                f"order records (event {anchor.length})")
    return None
