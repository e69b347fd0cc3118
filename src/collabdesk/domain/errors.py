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


class IdempotencyKeyInUse(CollabdeskError):
    """The first request with this key is still running; retry after `retry_after` s."""

    code = "idempotency_key_in_use"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(CollabdeskError):
    code = "payload_too_large"


class VersionConflict(CollabdeskError):
    code = "version_conflict"


class AlreadyExists(CollabdeskError):
    """A client-chosen id (store, order, login) is already taken."""

    code = "already_exists"


class ConcurrentUpdate(CollabdeskError):
    """Another transaction won: a guarded UPDATE matched no row, or the database chose
    this transaction as a deadlock or serialization victim.

    Services rerun the whole use case on this, so the loser sees the domain's verdict on
    the new state (e.g. invalid_transition) rather than this error. Writers lock what
    they change first, so it is rare; one that survives every rerun is a 503 to retry.
    """

    code = "concurrent_update"
    retry_after = 1
