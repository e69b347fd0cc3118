"""Recompute every work order's hash chain (`collabdesk audit verify`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from collabdesk.domain.audit import ChainLink, find_break

from .context import ServiceContext
from .ports import UnitOfWork


def _ids_after(after: str | None, page: int, uow: UnitOfWork) -> list[str]:
    return uow.events.work_order_ids(after, page)


def _chain(work_order_id: str, uow: UnitOfWork) -> list[ChainLink]:
    return uow.events.chain(work_order_id)


@dataclass
class AuditReport:
    checked: int = 0
    events: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)  # (work order, what)


def verify_chains(ctx: ServiceContext, page: int = 500,
                  progress: Callable[[int], object] | None = None) -> AuditReport:
    report = AuditReport()
    after: str | None = None
    while True:
        ids = ctx.read(partial(_ids_after, after, page))
        if not ids:
            return report
        for wo_id in ids:
            links = ctx.read(partial(_chain, wo_id))
            report.checked += 1
            report.events += len(links)
            problem = "no events" if not links else find_break(links)
            if problem:
                report.broken.append((wo_id, problem))
        if progress:
            progress(len(ids))
        after = ids[-1]
