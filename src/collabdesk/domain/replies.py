"""Reply options and what each requires (rules.md §5), as one table.

Adding or tuning an option is a row here plus its transition in `states.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .states import Action


class ReplyOption(StrEnum):
    RESOLVED_AGREED = "resolved_agreed"
    UNRESOLVED_NO_AGREEMENT = "unresolved_no_agreement"
    UNRESOLVED_UNREACHABLE = "unresolved_unreachable"
    NOT_RELATED = "not_related"


@dataclass(frozen=True)
class ReplyRequirements:
    action: Action
    statement: bool = False
    agreement: bool = False
    evidence: bool = False  # the reply itself must carry evidence
    reached_contacts: int = 0  # contacts with outcome `reached`
    # At least `min_contact_attempts` contacts, every one `unreachable`, each with evidence.
    unreachable_attempts: bool = False


REPLY_REQUIREMENTS: dict[ReplyOption, ReplyRequirements] = {
    ReplyOption.RESOLVED_AGREED: ReplyRequirements(
        Action.REPLY_RESOLVED_AGREED, agreement=True, reached_contacts=1
    ),
    ReplyOption.UNRESOLVED_NO_AGREEMENT: ReplyRequirements(
        Action.REPLY_UNRESOLVED_NO_AGREEMENT, statement=True, reached_contacts=1
    ),
    ReplyOption.UNRESOLVED_UNREACHABLE: ReplyRequirements(
        Action.REPLY_UNRESOLVED_UNREACHABLE, unreachable_attempts=True
    ),
    ReplyOption.NOT_RELATED: ReplyRequirements(Action.REPLY_NOT_RELATED, statement=True),
}
