"""Limits on GraphQL documents, each set by `Settings` and on by default.

Depth, aliases and tokens are Strawberry's own limits; the cost, list lengths,
NUL characters and (in production) introspection are validation rules of
ours. All of them run with validation, which Strawberry caches per document: a
document that is sent again is not checked again. Only what reads a request's
variables (a page size given by a variable, lists and NUL characters in
values) runs per request, just before execution (`request_limit_errors`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    ListValueNode,
    OperationDefinitionNode,
    StringValueNode,
    ValidationRule,
    build_schema,
    get_operation_ast,
    parse,
    type_from_ast,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import Schema
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from api.query_cost import cost_rule, measure_cost
from core.errors import InvalidArguments
from core.settings import Settings


def document_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The rules that depend on the document alone, made once per app so that
    Strawberry's validation cache (keyed by the rules too) finds them again."""
    rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(settings.max_aliases).validation_rules,
        NulInDocument,
        list_length_rule(settings.max_list_items),
        cost_rule(settings.max_query_cost),
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def cost_schema(schema: Schema) -> Callable[[], GraphQLSchema]:
    """The schema's types as graphql-core sees them, built once from its SDL,
    for measuring costs outside validation."""

    @functools.cache
    def build() -> GraphQLSchema:
        return build_schema(schema.as_str())

    return build


def request_limit_errors(
    *,
    schema: GraphQLSchema,
    document: DocumentNode | None,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    max_cost: int,
    max_list_items: int,
    cost_uses_variables: bool = True,
) -> list[GraphQLError]:
    """The limits that read the request's variables, checked before execution;
    the cost is measured again only where a variable can change it."""
    if not variables:
        return []
    return _variable_errors(
        schema,
        document,
        operation_name,
        variables,
        max_cost=max_cost if cost_uses_variables else None,
        max_list_items=max_list_items,
    )


def _variable_errors(
    schema: GraphQLSchema,
    document: DocumentNode | None,
    operation_name: str | None,
    variables: Mapping[str, Any],
    *,
    max_cost: int | None,
    max_list_items: int,
) -> list[GraphQLError]:
    """`max_cost` None: the cost cannot depend on the variables."""
    if _contains_nul(variables):
        return [GraphQLError(NUL_MESSAGE, original_error=InvalidArguments(NUL_MESSAGE))]
    operation = get_operation_ast(document, operation_name) if document else None
    if document is None or operation is None:
        return []
    too_long = _overlong_list(schema, operation, variables, max_list_items)
    if too_long is not None:
        return [too_long]
    if max_cost is None:
        return []
    cost = measure_cost(schema, document, operation, variables)
    if cost.uses_variables and cost.value > max_cost:
        return [cost.error(operation, max_cost)]
    return []


# --- Lists -------------------------------------------------------------------
#
# A list filter becomes one SQL parameter per value, and PostgreSQL takes at
# most 32,767 parameters in a statement: beyond it the statement fails as an
# internal error. Every list argument is held to `max_list_items` instead, in
# the document (a validation rule) and in the variables (before execution);
# JSON and GeoJSON values are scalars, which this does not look into.


def _list_error(path: str, length: int, limit: int, node: ListValueNode | None) -> GraphQLError:
    message = f"{path} holds {length} items; a list may hold at most {limit}."
    return GraphQLError(message, node, original_error=InvalidArguments(message))


def list_length_rule(limit: int) -> type[ASTValidationRule]:
    class ListLength(ValidationRule):
        def enter_list_value(self, node: ListValueNode, *_: Any) -> None:
            if len(node.values) > limit:
                self.report_error(_list_error("A list", len(node.values), limit, node))

    return ListLength


def _overlong_list(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    limit: int,
) -> GraphQLError | None:
    # Walked with a stack, not recursion: variables may nest as deep as the JSON
    # decoder allows, deeper than Python's recursion limit.
    pending: list[tuple[GraphQLInputType, Any, str]] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        declared = type_from_ast(schema, definition.type)
        if name in variables and declared is not None:
            pending.append((declared, variables[name], f"${name}"))  # type: ignore[arg-type]
    while pending:
        type_, value, path = pending.pop()
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            items = value if isinstance(value, list) else [value]
            if len(items) > limit:
                return _list_error(path, len(items), limit, None)
            pending.extend((type_.of_type, item, f"{path}[{i}]") for i, item in enumerate(items))
        elif isinstance(type_, GraphQLInputObjectType) and isinstance(value, Mapping):
            pending.extend(
                (field.type, value[name], f"{path}.{name}")
                for name, field in type_.fields.items()
                if name in value
            )
    return None


# --- Text --------------------------------------------------------------------

NUL_MESSAGE = "Text must not contain the NUL character (U+0000)."


def _contains_nul(value: Any) -> bool:
    pending = [value]  # a stack, for the reason given in _overlong_list
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class NulInDocument(ValidationRule):
    """PostgreSQL cannot store U+0000 in text or jsonb: a string holding it would
    fail deep in a query as an internal error. It is refused up front instead,
    wherever it appears: in the document here, in the variables by `request_limit_errors`."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            error = InvalidArguments(NUL_MESSAGE)
            self.report_error(GraphQLError(NUL_MESSAGE, node, original_error=error))


@functools.lru_cache(maxsize=1_024)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


def cached_parse(query: str, max_tokens: int) -> DocumentNode | None:
    """The parsed document, kept by its text; None when it does not parse, which
    is left to Strawberry's own parsing: it reports the syntax error as the
    operation's result (so every step sees it) instead of raising out of a hook,
    as Strawberry's ParserCache does."""
    try:
        return _parse(query, max_tokens)
    except GraphQLError:
        return None


class ValidTexts:
    """The texts of documents that validated without error, the least recently
    used forgotten first, each with whether its cost depends on the variables.
    Validation depends on the text alone (the schema and the rules never change
    in a process), so a text found here need not be validated again: Strawberry's
    ValidationCache would hash the whole document tree on every request to find
    out."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._texts: dict[str, bool] = {}

    def __contains__(self, query: str) -> bool:
        return self.cost_uses_variables(query) is not None

    def cost_uses_variables(self, query: str) -> bool | None:
        """None when the text is not known to be valid."""
        uses = self._texts.pop(query, None)
        if uses is not None:
            self._texts[query] = uses  # most recently used last
        return uses

    def add(self, query: str, document: DocumentNode, schema: GraphQLSchema) -> None:
        self._texts[query] = any(
            measure_cost(schema, document, definition).uses_variables
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        )
        while len(self._texts) > self.maxsize:
            del self._texts[next(iter(self._texts))]
