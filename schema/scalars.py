from __future__ import annotations

from datetime import date, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from core.errors import InvalidArguments

GeoJSON = NewType("GeoJSON", dict[str, Any])

# Dates a city's reports and statistics can mean. Beyond them Python and
# PostgreSQL disagree at the edges (year 1 at +14:00 is year 0 in UTC, which
# Python cannot hold): refused as input instead of failing inside a query.
FIRST_YEAR = 1900
LAST_YEAR = 2999


def _in_range(value: date, what: str) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidArguments(
            f"{what} must be between the years {FIRST_YEAR} and {LAST_YEAR} (got {value.year})"
        )


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidArguments("a DateTime is an ISO 8601 string, e.g. 2026-01-31T08:00:00+07:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidArguments(f"not an ISO 8601 date and time: {value[:40]!r}") from error
    _in_range(parsed, "a DateTime")
    return parsed


def _parse_date(value: object) -> date:
    if not isinstance(value, str):
        raise InvalidArguments("a Date is an ISO 8601 string, e.g. 2026-01-31")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as error:
        raise InvalidArguments(f"not an ISO 8601 date: {value[:40]!r}") from error
    _in_range(parsed, "a Date")
    return parsed


def _isoformat(value: date) -> str:
    return value.isoformat()


SCALARS: dict[object, ScalarDefinition] = {
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="A GeoJSON geometry object (RFC 7946): WGS 84, longitude before latitude.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=lambda value: value,
        parse_value=lambda value: value,
    ),
    # Strawberry's own DateTime and Date, with the years held to the range above.
    datetime: strawberry.scalar(
        name="DateTime",
        description=f"Date with time (ISO 8601), years {FIRST_YEAR} to {LAST_YEAR}.",
        serialize=_isoformat,
        parse_value=_parse_datetime,
    ),
    date: strawberry.scalar(
        name="Date",
        description=f"Date (ISO 8601), years {FIRST_YEAR} to {LAST_YEAR}.",
        serialize=_isoformat,
        parse_value=_parse_date,
    ),
}
