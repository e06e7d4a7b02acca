"""The one table from expected domain errors to GraphQL error codes, and the
extension that applies it: expected errors keep their message, anything else is
logged and masked so that no stack trace or SQL reaches a caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api.auth import InvalidCredentials
from api.limits import CostLimitExceeded, RateLimited
from core.errors import (
    CaseNotFound,
    InvalidArguments,
    InvalidTransition,
    NoActiveBoundarySet,
    PatriotError,
    ReopenWindowClosed,
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
    NotAuthenticated: "UNAUTHENTICATED",
    InvalidCredentials: "UNAUTHENTICATED",
    Forbidden: "FORBIDDEN",
}
INTERNAL_MESSAGE = "Internal server error; the incident has been logged."


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


def public_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # Syntax and validation errors describe the caller's document: safe to show.
        return error
    if isinstance(original, PatriotError):
        return GraphQLError(
            str(original),
            nodes=error.nodes,
            path=error.path,
            extensions={**(error.extensions or {}), "code": error_code(original)},
        )
    logger.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError(
        INTERNAL_MESSAGE, nodes=error.nodes, path=error.path, extensions={"code": "INTERNAL"}
    )


def make_errors_public(result: OperationResult | None) -> None:
    if result is not None and result.errors:
        result.errors = [public_error(e) for e in result.errors]


class PublicErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        make_errors_public(self.execution_context.result)
