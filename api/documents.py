"""Parsed and validated GraphQL documents, kept by their text.

Partner apps and the POC screen send the same few documents over and over:
parsing and validating one (with the limit rules of `api.limits`) took several
milliseconds, most of the CPU of a simple query. Everything about a document
that does not depend on the request is worked out once and kept in a bounded
LRU; per request only the checks that read the variables run (NUL characters,
and the cost when a page size comes from a variable).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from api.compiled import CompiledQuery, compile_query
from api.limits import document_rules, measure_cost, request_errors
from core.settings import Settings

# Documents longer than this are checked on every request instead of being
# kept: real clients send short documents, and the cache must stay small.
LONGEST_CACHED_DOCUMENT = 16_384


@dataclass(frozen=True)
class CheckedDocument:
    document: DocumentNode
    # Parse-time, validation and limit errors that hold for every request.
    errors: tuple[GraphQLError, ...]
    # Operations whose cost depends on the variables (a page size given by one).
    variable_cost_operations: tuple[OperationDefinitionNode, ...]
    # A plan that answers the query without graphql-core's executor, if it is that simple.
    compiled: CompiledQuery | None = None


class DocumentChecker:
    """One per app: the schema, the limit rules and the LRU of checked documents."""

    def __init__(
        self, *, schema: Callable[[], GraphQLSchema], settings: Settings, maxsize: int
    ) -> None:
        self._schema = schema
        self._max_tokens = settings.max_tokens
        self._max_cost = settings.max_query_cost
        self._rules: tuple[type[ASTValidationRule], ...] = (
            *specified_rules,
            *document_rules(settings),
        )
        self._cached = functools.lru_cache(maxsize=maxsize)(self._check)

    def check(self, query: str) -> CheckedDocument:
        """Raises GraphQLError when the text does not parse (never cached)."""
        if len(query) > LONGEST_CACHED_DOCUMENT:
            return self._check(query)
        return self._cached(query)

    def _check(self, query: str) -> CheckedDocument:
        schema = self._schema()
        document = parse(query, max_tokens=self._max_tokens)
        errors = validate_document(schema, document, self._rules)
        variable_cost: list[OperationDefinitionNode] = []
        if not errors:
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    cost = measure_cost(schema, document, definition)
                    if cost.uses_variables:
                        variable_cost.append(definition)
                    elif cost.value > self._max_cost:
                        errors.append(cost.error(definition, self._max_cost))
        compiled = compile_query(schema, document) if not errors else None
        return CheckedDocument(document, tuple(errors), tuple(variable_cost), compiled)

    def request_errors(
        self, checked: CheckedDocument, variables: Mapping[str, Any] | None
    ) -> list[GraphQLError]:
        errors = list(checked.errors)
        if errors:
            return errors
        schema = self._schema()
        for definition in checked.variable_cost_operations:
            cost = measure_cost(schema, checked.document, definition, variables)
            if cost.value > self._max_cost:
                errors.append(cost.error(definition, self._max_cost))
        errors.extend(request_errors(variables))
        return errors


class CheckedDocuments(SchemaExtension):
    """Replaces Strawberry's parsing and validation with the checker's cached ones."""

    def __init__(self, *, checker: DocumentChecker) -> None:
        self.checker = checker
        self.checked: CheckedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.graphql_document is None and execution.query:
            self.checked = self.checker.check(execution.query)
            execution.graphql_document = self.checked.document
        yield

    def on_validate(self) -> Iterator[None]:
        if self.checked is not None:
            # Strawberry skips its own validation once errors (even none) are set.
            self.execution_context.pre_execution_errors = self.checker.request_errors(
                self.checked, self.execution_context.variables
            )
        yield
