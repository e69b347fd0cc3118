"""The bounds every value from outside must keep before it meets a rule or a database.

A client can send any integer, any date and any string; the databases and `datetime`
cannot hold all of them (PostgreSQL refuses NUL in text and integers past 2^63, dates
overflow past year 9999). Each edge (HTTP schemas, the order import) checks these same
bounds, so an out-of-range value is a validation error naming its field, never a crash.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from .errors import ValidationFailed

# Money: what the database's 64-bit integer columns hold. (Exact beyond a double's 2^53:
# clients that parse JSON numbers as doubles should read amounts as strings of digits.)
MAX_CENTS = 2**63 - 1

# Calendar: years a rule may refer to. Kept well inside `datetime`'s range, so adding a
# window, a reply deadline or a time-zone offset to a bounded value can never overflow.
MIN_YEAR = 1970
MAX_YEAR = 9998
EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(MAX_YEAR, 12, 31, 23, 59, 59, tzinfo=UTC)

# A test-clock step: at most ten years at a time, and never past LATEST.
MAX_ADVANCE_SECONDS = 10 * 366 * 24 * 3600

# Ids chosen by clients (stores, orders) and every id in a path: 1-64 letters, digits,
# `.`, `_`, `:` or `-`. Nothing that needs escaping in a URL, no spaces, no controls.
ID_MAX = 64
ID_PATTERN = r"^[\w.:-]{1,64}$"
_ID = re.compile(ID_PATTERN)

# C0 and C1 control characters; free text may keep tab, line feed and carriage return.
# (Lone surrogates never get this far: they are not valid in UTF-8 or in a str from JSON
# that pydantic accepts.)
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character_problem(value: str, *, multiline: bool) -> str | None:
    """Why `value` may not be stored as text, or None when it may."""
    found = (_CONTROL_EXCEPT_WHITESPACE if multiline else _CONTROL).search(value)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} is not allowed"


def is_valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def check_id(value: str, field: str) -> str:
    if not is_valid_id(value):
        raise ValidationFailed(
            f"{field} must be 1-{ID_MAX} letters, digits, '.', '_', ':' or '-'")
    return value


def check_cents(value: int, field: str) -> int:
    if not 0 <= value <= MAX_CENTS:
        raise ValidationFailed(f"{field} must be between 0 and {MAX_CENTS} cents")
    return value


def instant_problem(value: datetime) -> str | None:
    """Why `value` is no usable instant (no offset, or outside MIN_YEAR..MAX_YEAR)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "needs a UTC offset"
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return f"must be between the years {MIN_YEAR} and {MAX_YEAR}"
    return None


def check_instant(value: datetime, field: str) -> datetime:
    if (problem := instant_problem(value)) is not None:
        raise ValidationFailed(f"{field} {problem}")
    return value


def date_problem(value: date) -> str | None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return f"must be between the years {MIN_YEAR} and {MAX_YEAR}"
    return None
