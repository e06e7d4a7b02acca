"""The one table from expected domain errors to GraphQL error codes, and the
extensions that apply it: expected errors keep their message and get their
code, anything else is logged and masked (Strawberry's MaskErrors) so that no
stack trace or SQL reaches a caller."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Protocol

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionResult

from api.auth import InvalidCredentials
from core.database import database_unavailable
from core.errors import (
    CaseNotFound,
    CostLimitExceeded,
    HolidayCalendarMissing,
    InvalidArguments,
    InvalidTransition,
    NoActiveBoundarySet,
    PatriotError,
    RateLimited,
    ReopenWindowClosed,
    ResponseTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from domain.access import Forbidden, NotAuthenticated

ERROR_CODES: dict[type[PatriotError], str] = {
    ValidationFailed: "BAD_USER_INPUT",
    InvalidArguments: "BAD_USER_INPUT",
    NoActiveBoundarySet: "NO_ACTIVE_BOUNDARY_SET",
    CaseNotFound: "NOT_FOUND",
    InvalidTransition: "INVALID_TRANSITION",
    ReopenWindowClosed: "REOPEN_WINDOW_CLOSED",
    CostLimitExceeded: "COST_LIMIT",
    RateLimited: "RATE_LIMITED",
    ResponseTooLarge: "RESPONSE_TOO_LARGE",
    NotAuthenticated: "UNAUTHENTICATED",
    InvalidCredentials: "UNAUTHENTICATED",
    Forbidden: "FORBIDDEN",
    ServiceUnavailable: "SERVICE_UNAVAILABLE",
    HolidayCalendarMissing: "HOLIDAY_CALENDAR_MISSING",
}
INTERNAL_CODE = "INTERNAL"
INTERNAL_MESSAGE = "Internal server error; the incident has been logged."


class OperationResult(Protocol):
    """What the steps around an operation read and change: Strawberry's and
    graphql-core's results alike."""

    data: Any
    errors: list[GraphQLError] | None


# The results an operation's steps may meet: Strawberry's and graphql-core's.
RESULT_TYPES = (ExecutionResult, GraphQLExecutionResult)

logger = logging.getLogger("patriot.errors")


def error_code(error: PatriotError) -> str:
    for cls in type(error).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return "BAD_REQUEST"


def is_unexpected(error: GraphQLError) -> bool:
    """Syntax and validation errors describe the caller's document, domain errors
    are expected refusals: both are safe to show. Anything else is a bug."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | PatriotError)


def _domain_error(error: GraphQLError) -> PatriotError | None:
    # graphql-core wraps what a scalar raises for a variable twice:
    # GraphQLError -> GraphQLError -> the scalar's own error.
    original = error.original_error
    while isinstance(original, GraphQLError):
        original = original.original_error
    return original if isinstance(original, PatriotError) else None


def with_code(error: GraphQLError) -> GraphQLError:
    original = _domain_error(error)
    if original is not None:
        error.extensions = {**(error.extensions or {}), "code": error_code(original)}
    return error


def give_codes(result: object) -> None:
    """Gives every expected error of a result the stable code of its type."""
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [with_code(e) for e in errors]  # type: ignore[attr-defined]


class PublicErrors(MaskErrors):
    """Unexpected errors become one fixed message with the code INTERNAL (the
    original is logged by the schema, with its trace, before this runs); an
    unreachable database becomes SERVICE_UNAVAILABLE, which tells a caller to
    retry later rather than report a bug."""

    def __init__(self, *, retry_after_s: int) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)
        self.retry_after_s = retry_after_s

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if database_unavailable(error.original_error):
            return unavailable_error(self.retry_after_s, like=error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_CODE}
        return masked


def unavailable_error(retry_after_s: int, *, like: GraphQLError | None = None) -> GraphQLError:
    """SERVICE_UNAVAILABLE in the place of `like`, with nothing of the original
    (its message may name the server or hold SQL)."""
    unavailable = ServiceUnavailable(retry_after_s)
    return GraphQLError(
        str(unavailable),
        nodes=like.nodes if like else None,
        source=like.source if like else None,
        positions=like.positions if like else None,
        path=like.path if like else None,
        original_error=unavailable,
        extensions={"code": error_code(unavailable), "retryAfterSeconds": retry_after_s},
    )


def unavailable_retry_after(errors: Iterable[GraphQLError] | None) -> int | None:
    """Seconds after which to retry, when an error says the service is unavailable."""
    for error in errors or ():
        if (error.extensions or {}).get("code") == ERROR_CODES[ServiceUnavailable]:
            return int((error.extensions or {}).get("retryAfterSeconds") or 1)
    return None


_SUGGESTION = re.compile(r"\s*Did you mean\b.*$", re.DOTALL)


def hide_suggestions(errors: Iterable[GraphQLError] | None) -> None:
    """Strips every "Did you mean ...?" hint, which would reveal the schema bit by
    bit with introspection off. Strawberry's `disable_field_suggestions` covers
    unknown fields only; arguments, input fields, enum values and types too
    carry hints."""
    for error in errors or ():
        error.message = _SUGGESTION.sub("", error.message)
