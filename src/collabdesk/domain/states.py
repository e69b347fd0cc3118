"""States, roles, actions and the one transition table (rules.md §3-4).

Every legal move is a row below. Anything not in the table is `invalid_transition`;
an actor whose role is not on the action's row is `forbidden`. Guards that need data
(deadlines, contacts, appeal windows) live in `model.py` next to the aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    AWAITING_MERCHANT = "awaiting_merchant"
    AWAITING_CONSUMER = "awaiting_consumer"
    AWAITING_VERIFICATION = "awaiting_verification"
    IN_ADJUDICATION = "in_adjudication"
    UNDER_APPEAL = "under_appeal"
    WORRY_FREE = "worry_free"
    RESOLVED = "resolved"
    JUDGED = "judged"
    DISMISSED = "dismissed"
    WITHDRAWN = "withdrawn"
    SETTLED = "settled"


TERMINAL_STATES = frozenset(
    {State.RESOLVED, State.JUDGED, State.DISMISSED, State.WITHDRAWN, State.SETTLED}
)
OPEN_STATES = frozenset(State) - TERMINAL_STATES


class Role(StrEnum):
    CONSUMER = "consumer"
    MERCHANT_AGENT = "merchant_agent"
    MERCHANT_OWNER = "merchant_owner"
    TRIAGE = "triage"
    VERIFIER = "verifier"
    ADJUDICATOR = "adjudicator"
    SUPERVISOR = "supervisor"
    INTEGRATION = "integration"
    ADMIN = "admin"
    SYSTEM = "system"  # the deadline runner; never an account


MERCHANT_ROLES = frozenset({Role.MERCHANT_AGENT, Role.MERCHANT_OWNER})
PLATFORM_ROLES = frozenset({Role.TRIAGE, Role.VERIFIER, Role.ADJUDICATOR, Role.SUPERVISOR})
ACCOUNT_ROLES = frozenset(Role) - {Role.SYSTEM}


class Action(StrEnum):
    OPEN = "open"
    OPEN_WORRY_FREE = "open_worry_free"
    REPLY_RESOLVED_AGREED = "reply_resolved_agreed"
    REPLY_UNRESOLVED_NO_AGREEMENT = "reply_unresolved_no_agreement"
    REPLY_UNRESOLVED_UNREACHABLE = "reply_unresolved_unreachable"
    REPLY_NOT_RELATED = "reply_not_related"
    TIME_OUT = "time_out"
    CONSUMER_ACCEPT = "consumer_accept"
    CONSUMER_REJECT = "consumer_reject"
    CONFIRMATION_LAPSE = "confirmation_lapse"
    CONTACT_VERIFIED = "contact_verified"
    CONTACT_REJECTED = "contact_rejected"
    UNRELATED_CONFIRMED = "unrelated_confirmed"
    UNRELATED_REJECTED = "unrelated_rejected"
    RULE = "rule"
    APPEAL = "appeal"
    DECIDE_APPEAL = "decide_appeal"
    SETTLE = "settle"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class Transition:
    source: State | None  # None: the work order does not exist yet
    action: Action
    roles: frozenset[Role]
    target: State


_C = frozenset({Role.CONSUMER})
_OPENERS = frozenset({Role.CONSUMER, Role.TRIAGE})
_SYS = frozenset({Role.SYSTEM})
_V = frozenset({Role.VERIFIER})
S = State
A = Action

TRANSITIONS: tuple[Transition, ...] = (
    Transition(None, A.OPEN, _OPENERS, S.AWAITING_MERCHANT),
    Transition(None, A.OPEN_WORRY_FREE, _OPENERS, S.WORRY_FREE),
    Transition(S.AWAITING_MERCHANT, A.REPLY_RESOLVED_AGREED, MERCHANT_ROLES, S.AWAITING_CONSUMER),
    Transition(
        S.AWAITING_MERCHANT, A.REPLY_UNRESOLVED_NO_AGREEMENT, MERCHANT_ROLES, S.IN_ADJUDICATION
    ),
    Transition(
        S.AWAITING_MERCHANT, A.REPLY_UNRESOLVED_UNREACHABLE, MERCHANT_ROLES,
        S.AWAITING_VERIFICATION,
    ),
    Transition(S.AWAITING_MERCHANT, A.REPLY_NOT_RELATED, MERCHANT_ROLES, S.AWAITING_VERIFICATION),
    Transition(S.AWAITING_MERCHANT, A.TIME_OUT, _SYS, S.IN_ADJUDICATION),
    Transition(S.AWAITING_CONSUMER, A.CONSUMER_ACCEPT, _C, S.RESOLVED),
    Transition(S.AWAITING_CONSUMER, A.CONSUMER_REJECT, _C, S.IN_ADJUDICATION),
    Transition(S.AWAITING_CONSUMER, A.CONFIRMATION_LAPSE, _SYS, S.RESOLVED),
    Transition(S.AWAITING_VERIFICATION, A.CONTACT_VERIFIED, _V, S.IN_ADJUDICATION),
    Transition(S.AWAITING_VERIFICATION, A.CONTACT_REJECTED, _V, S.IN_ADJUDICATION),
    Transition(S.AWAITING_VERIFICATION, A.UNRELATED_CONFIRMED, _V, S.DISMISSED),
    Transition(S.AWAITING_VERIFICATION, A.UNRELATED_REJECTED, _V, S.IN_ADJUDICATION),
    Transition(S.IN_ADJUDICATION, A.RULE, frozenset({Role.ADJUDICATOR}), S.JUDGED),
    Transition(S.JUDGED, A.APPEAL, frozenset({Role.MERCHANT_OWNER}), S.UNDER_APPEAL),
    Transition(S.UNDER_APPEAL, A.DECIDE_APPEAL, frozenset({Role.SUPERVISOR}), S.JUDGED),
    Transition(S.WORRY_FREE, A.SETTLE, frozenset({Role.TRIAGE}), S.SETTLED),
    *(Transition(s, A.WITHDRAW, _C, S.WITHDRAWN) for s in sorted(OPEN_STATES)),
)

_BY_EDGE: dict[tuple[State | None, Action], Transition] = {
    (t.source, t.action): t for t in TRANSITIONS
}
ACTION_ROLES: dict[Action, frozenset[Role]] = {}
for _t in TRANSITIONS:
    ACTION_ROLES[_t.action] = ACTION_ROLES.get(_t.action, frozenset()) | _t.roles


def find_transition(source: State | None, action: Action) -> Transition | None:
    return _BY_EDGE.get((source, action))
