"""Field types shared by every request schema and path, built on `domain/bounds.py`.

One place decides what an id, a line of text, a paragraph, an amount, an instant and a
date may be, so no endpoint can forget a bound; the same rules appear in the OpenAPI
document as patterns and limits, so clients (and the fuzzer) can see them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictInt,
    StringConstraints,
)

from collabdesk.domain import bounds


def _no_controls(multiline: bool) -> AfterValidator:
    def check(value: str) -> str:
        if (problem := bounds.control_character_problem(value, multiline=multiline)):
            raise ValueError(problem)
        return value
    return AfterValidator(check)


# RFC 3339 (JSON Schema's `date-time` and `date`), the only spellings the document
# promises; pydantic alone would also take a number of seconds or days since 1970.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _spelled(pattern: re.Pattern[str], what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if value is None or isinstance(value, date):  # absent, or already a value
            return value
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise ValueError(f"must be {what}")
        return value
    return BeforeValidator(check)


def _in_calendar(value: datetime) -> datetime:
    if (problem := bounds.instant_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _date_in_calendar(value: date | None) -> date | None:
    if value is not None and (problem := bounds.date_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _id_shape(value: str) -> str:
    if not bounds.is_valid_id(value):
        raise ValueError(f"must be 1-{bounds.ID_MAX} letters, digits, '.', '_', ':' or '-'")
    return value


_SINGLE = Field(json_schema_extra={"pattern": bounds.SINGLE_LINE_PATTERN})
_MULTI = Field(json_schema_extra={"pattern": bounds.MULTI_LINE_PATTERN})

# An id: of a store or order chosen by the client, or of anything in a body.
Id = Annotated[str, AfterValidator(_id_shape),
               Field(json_schema_extra={"pattern": bounds.ID_PATTERN, "minLength": 1,
                                        "maxLength": bounds.ID_MAX})]


# One line of text (a name, a login): no control characters at all.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200),
                 _no_controls(multiline=False), _SINGLE]
Login = Annotated[str, StringConstraints(min_length=1, max_length=100),
                  _no_controls(multiline=False), _SINGLE]
Password = Annotated[str, StringConstraints(min_length=1, max_length=200),
                     _no_controls(multiline=False), _SINGLE]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=32),
                  _no_controls(multiline=False), _SINGLE]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254),
                  _no_controls(multiline=False), _SINGLE]
# Free text (a claim, a statement): tab, CR and LF allowed, other controls refused.
Text = Annotated[str, StringConstraints(min_length=1, max_length=5000),
                 _no_controls(multiline=True), _MULTI]
OptionalText = Annotated[str, StringConstraints(max_length=5000),
                         _no_controls(multiline=True), _MULTI]
ShortText = Annotated[str, StringConstraints(max_length=2000),
                      _no_controls(multiline=True), _MULTI]

Cents = Annotated[StrictInt, Field(ge=0, le=bounds.MAX_CENTS)]
Instant = Annotated[AwareDatetime, AfterValidator(_in_calendar),
                    _spelled(_DATE_TIME, "an RFC 3339 time with an offset, e.g. "
                                         "2026-11-02T08:00:00Z")]
OptionalDay = Annotated[date | None, AfterValidator(_date_in_calendar),
                        _spelled(_DATE, "a date, e.g. 2026-11-02")]
OptionalYear = Annotated[int | None, Query(ge=bounds.MIN_YEAR, le=bounds.MAX_YEAR)]

# Every id in a path is checked before any lookup: a NUL or a 10 kB "id" is a validation
# error naming the parameter, not a database error.
PathId = Annotated[str, Path(min_length=1, max_length=bounds.ID_MAX,
                             pattern=bounds.ID_PATTERN)]
QueryId = Annotated[str | None, Query(min_length=1, max_length=bounds.ID_MAX,
                                      pattern=bounds.ID_PATTERN)]
