"""Recompute every work order's hash chains (`collabdesk audit verify`).

Each chain is checked link by link (sequence, previous hash, content hash) and against the
head its work order row records, so an edited, inserted, removed or truncated history is
found. What this does not catch is described in docs/operations.md ("Audit").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from collabdesk.domain.audit import ALL, VISIBILITIES, ChainHead, ChainLink, find_break

from .context import ServiceContext
from .ports import UnitOfWork


def _anchors(after: str | None, page: int,
             uow: UnitOfWork) -> list[tuple[str, dict[str, ChainHead]]]:
    return uow.events.anchors(after, page)


def _chains(work_order_id: str, uow: UnitOfWork) -> dict[str, list[ChainLink]]:
    return {v: uow.events.chain(work_order_id, v) for v in VISIBILITIES}


@dataclass
class AuditReport:
    checked: int = 0
    events: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)  # (work order, what)


def check_work_order(chains: dict[str, list[ChainLink]],
                     anchors: dict[str, ChainHead]) -> str | None:
    """What is wrong with one work order's history, or None."""
    if not chains[ALL]:
        return "no events"
    for visibility in VISIBILITIES:
        problem = find_break(chains[visibility], anchors[visibility])
        if problem:
            return problem if visibility == ALL else f"{visibility} chain: {problem}"
    return None


def verify_chains(ctx: ServiceContext, page: int = 500,
                  progress: Callable[[int], object] | None = None) -> AuditReport:
    report = AuditReport()
    after: str | None = None
    while True:
        anchored = ctx.read(partial(_anchors, after, page))
        if not anchored:
            return report
        for wo_id, anchors in anchored:
            chains = ctx.read(partial(_chains, wo_id))
            report.checked += 1
            report.events += sum(len(links) for links in chains.values())
            if problem := check_work_order(chains, anchors):
                report.broken.append((wo_id, problem))
        if progress:
            progress(len(anchored))
        after = anchored[-1][0]
