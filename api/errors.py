"""The one table from expected domain errors to GraphQL error codes, and the
extensions that apply it: expected errors keep their message and get their
code, anything else is logged and masked (Strawberry's MaskErrors) so that no
stack trace or SQL reaches a caller."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from api.auth import InvalidCredentials
from core.errors import (
    CaseNotFound,
    CostLimitExceeded,
    InvalidArguments,
    InvalidTransition,
    NoActiveBoundarySet,
    PatriotError,
    RateLimited,
    ReopenWindowClosed,
    ResponseTooLarge,
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
}
INTERNAL_CODE = "INTERNAL"
INTERNAL_MESSAGE = "Internal server error; the incident has been logged."


@runtime_checkable
class OperationResult(Protocol):
    """What the steps around an operation read and change: Strawberry's and
    graphql-core's results alike."""

    data: Any
    errors: list[GraphQLError] | None


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


class ErrorCodes(SchemaExtension):
    """Gives every expected error the stable code of its type."""

    def on_operation(self) -> Iterator[None]:
        yield
        _apply(self.execution_context.result, with_code)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        _apply(result, with_code)
        yield


class PublicErrors(MaskErrors):
    """Unexpected errors become one fixed message with the code INTERNAL (the
    original is logged by the schema, with its trace, before this runs)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_CODE}
        return masked


_SUGGESTION = re.compile(r"\s*Did you mean\b.*$", re.DOTALL)


def hide_suggestions(errors: Iterable[GraphQLError] | None) -> None:
    """Strips every "Did you mean ...?" hint, which would reveal the schema bit by
    bit with introspection off. Strawberry's `disable_field_suggestions` covers
    unknown fields only; arguments, input fields, enum values and types too
    carry hints."""
    for error in errors or ():
        error.message = _SUGGESTION.sub("", error.message)


class HideSuggestions(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        hide_suggestions(result.errors if result is not None else None)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        hide_suggestions(getattr(result, "errors", None))
        yield


def _apply(result: object, change: Any) -> None:
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [change(e) for e in errors]  # type: ignore[attr-defined]
