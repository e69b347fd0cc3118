"""One root exception; each subclass carries the stable `code` clients branch on.

HTTP statuses are assigned at the edge (api/errors.py), never here.
"""

from __future__ import annotations


class CollabdeskError(Exception):
    """Root of every error the domain and services raise on purpose."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(CollabdeskError):
    code = "validation_error"


class NotFound(CollabdeskError):
    code = "not_found"


class Forbidden(CollabdeskError):
    code = "forbidden"


class Unauthenticated(CollabdeskError):
    code = "unauthenticated"


class InvalidTransition(CollabdeskError):
    code = "invalid_transition"


class ReplyWindowClosed(CollabdeskError):
    code = "reply_window_closed"


class ContactBeforeWorkOrder(CollabdeskError):
    code = "contact_before_work_order"


class ContactInFuture(CollabdeskError):
    code = "contact_in_future"


class ReplyRequirementsNotMet(CollabdeskError):
    code = "reply_requirements_not_met"


class DuplicateOpenWorkOrder(CollabdeskError):
    code = "duplicate_open_work_order"


class AppealWindowClosed(CollabdeskError):
    code = "appeal_window_closed"


class EvidenceTooLarge(CollabdeskError):
    code = "evidence_too_large"


class EvidenceTypeNotAllowed(CollabdeskError):
    code = "evidence_type_not_allowed"


class IdempotencyKeyReused(CollabdeskError):
    code = "idempotency_key_reused"


class VersionConflict(CollabdeskError):
    code = "version_conflict"


class AlreadyExists(CollabdeskError):
    """A client-chosen id (store, order, login) is already taken."""

    code = "already_exists"


class ConcurrentUpdate(CollabdeskError):
    """The guarded UPDATE matched no row: another transaction changed the work order first.

    Services retry the whole use case once on this, so the loser sees the domain's
    verdict on the new state (e.g. invalid_transition) rather than this error.
    """

    code = "concurrent_update"
