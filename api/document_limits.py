"""Limits on GraphQL documents, each set by `Settings` and on by default.

Depth, aliases and tokens are Strawberry's own limits; the cost, NUL
characters and (in production) introspection are validation rules of ours.
All of them run with validation, which Strawberry caches per document: a
document that is sent again is not checked again. Only what reads a request's
variables (a page size given by a variable, NUL characters in values) runs per
request, just before execution (`request_limit_errors`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    StringValueNode,
    TypeMetaFieldDef,
    ValidationContext,
    ValidationRule,
    VariableNode,
    build_schema,
    get_named_type,
    get_operation_ast,
    parse,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import Schema
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from core.errors import CostLimitExceeded, InvalidArguments
from core.settings import Settings


def document_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The rules that depend on the document alone, made once per app so that
    Strawberry's validation cache (keyed by the rules too) finds them again."""
    rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(settings.max_aliases).validation_rules,
        NulInDocument,
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
    cost_uses_variables: bool = True,
) -> list[GraphQLError]:
    """The limits that read the request's variables, checked before execution;
    the cost is measured again only where a variable can change it."""
    if not variables:
        return []
    if _contains_nul(variables):
        return [GraphQLError(NUL_MESSAGE, original_error=InvalidArguments(NUL_MESSAGE))]
    if not cost_uses_variables:
        return []
    return _variable_errors(schema, document, operation_name, variables, max_cost)


def _variable_errors(
    schema: GraphQLSchema,
    document: DocumentNode | None,
    operation_name: str | None,
    variables: Mapping[str, Any],
    max_cost: int,
) -> list[GraphQLError]:
    if _contains_nul(variables):
        return [GraphQLError(NUL_MESSAGE, original_error=InvalidArguments(NUL_MESSAGE))]
    operation = get_operation_ast(document, operation_name) if document else None
    if document is None or operation is None:
        return []
    cost = measure_cost(schema, document, operation, variables)
    if cost.uses_variables and cost.value > max_cost:
        return [cost.error(operation, max_cost)]
    return []


# --- Cost --------------------------------------------------------------------
#
# cost(selection set) = sum of cost(field) over its fields, inline fragments and
#                       fragment spreads (every branch of a union counts);
# cost(field)         = 1 for a leaf, otherwise 1 + n * cost(its selection set),
# where n is the field's `first` or `limit` argument (as given, from a variable,
# or its default) and 1 for a field without one. Lists without a page argument
# (kecamatan, kelurahan, categories, a case's history) are bounded by the data
# and count once. So `cases(first: 100) { edges { node { ticket title } } }`
# costs 1 + 100 * (1 + (1 + 2)) = 401.

PAGE_ARGUMENTS = ("first", "limit")


class _OperationCost:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)
        self._fragment_costs: dict[str, int] = {}
        self._visiting: set[str] = set()
        # Whether a page size came from a variable: then the cost of the same
        # document differs between requests and cannot be kept with it.
        self.uses_variables = False

    def of(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self._selections(root, operation.selection_set)

    def _selections(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                branch = self.schema.get_type(condition.name.value) if condition else parent
                total += self._selections(branch, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value)
        return total

    def _fragment(self, name: str) -> int:
        # Memoized: a fragment spread many times (or spreading others many times)
        # is costed once, so a crafted document cannot make this exponential.
        if name in self._fragment_costs:
            return self._fragment_costs[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._visiting:
            return 0  # unknown fragments and cycles are reported by the standard rules
        self._visiting.add(name)
        cost = self._selections(
            self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set
        )
        self._visiting.discard(name)
        self._fragment_costs[name] = cost
        return cost

    def _field(self, parent: GraphQLNamedType | None, node: FieldNode) -> int:
        if node.selection_set is None:
            return 1
        definition = self._definition(parent, node.name.value)
        child = get_named_type(definition.type) if definition else None
        return 1 + self._page_size(definition, node) * self._selections(child, node.selection_set)

    def _definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if parent is self.schema.query_type and name == "__schema":
            return SchemaMetaFieldDef
        if parent is self.schema.query_type and name == "__type":
            return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field: GraphQLField | None = parent.fields.get(name)
            return field
        return None

    def _page_size(self, definition: GraphQLField | None, node: FieldNode) -> int:
        if definition is None:
            return 1
        for name in PAGE_ARGUMENTS:
            if name in definition.args:
                return max(1, self._int_argument(node, name, definition.args[name]))
        return 1

    def _int_argument(self, node: FieldNode, name: str, argument: GraphQLArgument) -> int:
        default = argument.default_value if isinstance(argument.default_value, int) else 1
        for given in node.arguments or ():
            if given.name.value != name:
                continue
            value = given.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                self.uses_variables = True
                variable = self.variables.get(value.name.value)
                if isinstance(variable, int) and not isinstance(variable, bool):
                    return variable
        return default


@dataclass(frozen=True)
class OperationCost:
    value: int
    uses_variables: bool

    def error(self, operation: OperationDefinitionNode, limit: int) -> GraphQLError:
        exceeded = CostLimitExceeded(self.value, limit)
        return GraphQLError(str(exceeded), operation, original_error=exceeded)


def measure_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None = None,
) -> OperationCost:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measure = _OperationCost(schema, fragments, variables or {}, operation)
    value = measure.of(operation)
    return OperationCost(value, measure.uses_variables)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None = None,
) -> int:
    return measure_cost(schema, document, operation, variables).value


def cost_rule(max_cost: int) -> type[ASTValidationRule]:
    """Refuses operations over the cost limit whose cost the document alone
    decides; one whose page size comes from a variable is measured again with
    the request's variables (`request_limit_errors`)."""

    class OperationCostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    cost = measure_cost(context.schema, document, definition)
                    if not cost.uses_variables and cost.value > max_cost:
                        context.report_error(cost.error(definition, max_cost))

    return OperationCostLimit


# --- Text --------------------------------------------------------------------

NUL_MESSAGE = "Text must not contain the NUL character (U+0000)."


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


class NulInDocument(ValidationRule):
    """PostgreSQL cannot store U+0000 in text or jsonb: a string holding it would
    fail deep in a query as an internal error. It is refused up front instead,
    wherever it appears: in the document here, in the variables by `request_errors`."""

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
