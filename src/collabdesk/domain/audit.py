"""The per-work-order hash chain (rules.md §10): each event's hash covers the one before."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(work_order_id: str, seq: int, at: str, actor_id: str, type_: str,
               data_json: str, prev_hash: str | None) -> str:
    material = canonical_json([work_order_id, seq, at, actor_id, type_, data_json, prev_hash])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


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


def find_break(links: Iterable[ChainLink]) -> str | None:
    """None when the chain is intact, else a sentence naming the first bad link."""
    prev: str | None = None
    expected_seq = 1
    for link in links:
        if link.seq != expected_seq:
            return f"event seq {link.seq} found where {expected_seq} was expected"
        if link.prev_hash != prev:
            return f"event {link.seq}: prev_hash does not match the hash of event {link.seq - 1}"
        recomputed = event_hash(link.work_order_id, link.seq, link.at, link.actor_id,
                                link.type, link.data_json, link.prev_hash)
        if recomputed != link.hash:
            return f"event {link.seq} ({link.type}): content does not match its hash"
        prev = link.hash
        expected_seq += 1
    return None
