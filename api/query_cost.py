"""What an operation costs, measured on its document before it runs.

cost(selection set) = sum of cost(field) over its fields, inline fragments and
                      fragment spreads (every branch of a union counts);
cost(field)         = for a field with a selection: 1 + n * cost(its selection),
                      for a leaf: its weight (1 unless listed in FIELD_WEIGHTS),
                      times n when it is a list of scalars;
n                   = the field's `first` or `limit` argument (as given, from a
                      variable, or its default) for a paged list; for a list
                      without one, its expected largest size (LIST_SIZES, else
                      DEFAULT_LIST_SIZE); 1 for anything else.

So `cases(first: 100) { edges { node { ticket title } } }` costs
1 + 100 * (1 + (1 + 2)) = 401, and `kecamatanList { kelurahan { geometry } }`
costs 1 + 12 * (1 + 8 * 100) = 9,613: the largest answers are priced by what
they hold, not once. The response byte budget (PATRIOT_MAX_RESPONSE_BYTES)
backs these estimates up where the data is larger than expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    ValidationContext,
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from graphql.pyutils import Undefined

from core.errors import CostLimitExceeded
from geo.heatmap import MAX_CELLS, estimated_cells

PAGE_ARGUMENTS = ("first", "limit")

Arguments = Callable[[str], Any]
"""A field's argument by name: as given, from a variable, or its default."""

Size = int | Callable[[Arguments], int]

# The boundaries of Kota Bekasi: 12 kecamatan, 56 kelurahan, at most 6 in one
# kecamatan (8 leaves room for a split).
KECAMATAN = 12
KELURAHAN = 56
KELURAHAN_PER_KECAMATAN = 8

# Lists without a page argument, by (type, field): the largest answer expected.
LIST_SIZES: Mapping[tuple[str, str], Size] = {
    ("Query", "kecamatanList"): KECAMATAN,
    ("Query", "kelurahanList"): lambda arg: (
        KELURAHAN_PER_KECAMATAN if arg("kecamatanCode") else KELURAHAN
    ),
    ("Kecamatan", "kelurahan"): KELURAHAN_PER_KECAMATAN,
    ("Query", "boundarySets"): 20,
    # Reference data: 16 dinas and 50 categories in the seeds, a few dozen
    # holidays a year (every year when no year is given).
    ("Query", "dinasList"): 30,
    ("Query", "categories"): 60,
    ("Category", "children"): 20,
    ("Category", "acceptedKinds"): 3,
    ("Query", "routingRules"): 50,
    ("RoutingRule", "kecamatanCodes"): KECAMATAN,
    ("RoutingRule", "kelurahanCodes"): KELURAHAN,
    ("Query", "holidays"): 100,
    # Statistics: a group per kelurahan at most (days or weeks over a long
    # range can be more: the response budget holds those).
    ("Query", "caseBacklog"): 60,
    ("CaseStats", "groups"): 60,
    ("OpenCaseCounts", "groups"): 60,
    # One case: its history grows with every change and support.
    ("Case", "history"): 30,
    ("Case", "mediaUrls"): 10,
    ("Case", "evidenceUrls"): 10,
    ("Case", "allowedActions"): 9,
    ("InvalidTransition", "allowedActions"): 9,
    ("ValidationError", "fields"): 10,
    # A connection's page argument already counts its edges.
    ("CaseConnection", "edges"): 1,
    ("PublicCaseConnection", "edges"): 1,
    ("PersonalDataAccessConnection", "edges"): 1,
    ("ReporterErasureConnection", "edges"): 1,
}
DEFAULT_LIST_SIZE = 100  # a list added without an entry above

# A boundary outline in full holds hundreds to thousands of vertices; simplified
# for a map (simplifyM of 10 m or more) far fewer.
GEOMETRY = 100
SIMPLIFIED_GEOMETRY = 20
SIMPLIFIED_FROM_M = 10.0
# A heatmap answers at most one feature per hexagon of its box; cells without a
# case are left out, so it is priced at one unit per ten cells.
HEATMAP_CELLS_PER_UNIT = 10


def _geometry(arg: Arguments) -> int:
    simplify_m = arg("simplifyM")
    if isinstance(simplify_m, int | float) and simplify_m >= SIMPLIFIED_FROM_M:
        return SIMPLIFIED_GEOMETRY
    return GEOMETRY


def _heatmap(arg: Arguments) -> int:
    bbox, cell_m = arg("bbox"), arg("cellM")
    sides = (
        [bbox.get(side) for side in ("west", "south", "east", "north")]
        if isinstance(bbox, Mapping)
        else []
    )
    largest = MAX_CELLS // HEATMAP_CELLS_PER_UNIT
    if len(sides) != 4 or not all(isinstance(v, int | float) for v in (*sides, cell_m)):
        return largest
    try:
        west, south, east, north, cell = (float(v) for v in (*sides, cell_m))
    except OverflowError:  # an integer beyond any float: refused when it runs
        return largest
    cells = estimated_cells((west, south, east, north), cell)
    return max(1, math.ceil(cells / HEATMAP_CELLS_PER_UNIT))


# Leaves whose answer grows with the data, by (type, field).
FIELD_WEIGHTS: Mapping[tuple[str, str], Size] = {
    ("Kecamatan", "geometry"): _geometry,
    ("Kelurahan", "geometry"): _geometry,
    ("RoutingRule", "area"): GEOMETRY,
    ("Query", "heatmap"): _heatmap,
    # Every kelurahan with its outline.
    ("Query", "kelurahanChoropleth"): lambda arg: KELURAHAN * _geometry(arg),
    # Small: bounded by the input limits of what they hold.
    ("GeoPoint", "geojson"): 1,
    ("CaseEvent", "details"): 1,
}


def _size(size: Size, arguments: Arguments) -> int:
    return size if isinstance(size, int) else size(arguments)


def _uses_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_uses_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_uses_variable(field.value) for field in value.fields)
    return False


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
            if name not in self.variables and definition.default_value is not None:
                self.variables[name] = value_from_ast_untyped(definition.default_value)
        self._fragment_costs: dict[str, int] = {}
        self._visiting: set[str] = set()
        # Whether an argument that prices a field came from a variable: then the
        # cost of the same document differs between requests and cannot be kept with it.
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
        definition = self._definition(parent, node.name.value)
        key = (parent.name if parent else "", node.name.value)
        count = self._count(definition, node, key)
        if node.selection_set is None:
            weight = FIELD_WEIGHTS.get(key, 1)
            return count * _size(weight, self._arguments(definition, node))
        child = get_named_type(definition.type) if definition else None
        return 1 + count * self._selections(child, node.selection_set)

    def _definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if parent is self.schema.query_type and name == "__schema":
            return SchemaMetaFieldDef
        if parent is self.schema.query_type and name == "__type":
            return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field: GraphQLField | None = parent.fields.get(name)
            return field
        return None

    def _count(self, definition: GraphQLField | None, node: FieldNode, key: tuple[str, str]) -> int:
        """How many of the field's answer there are: its page size or list size."""
        if definition is None:
            return 1
        arguments = self._arguments(definition, node)
        for name in PAGE_ARGUMENTS:
            if name in definition.args:
                page = arguments(name)
                return max(1, page) if isinstance(page, int) and not isinstance(page, bool) else 1
        field_type = definition.type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        # Introspection answers with the schema, whose size no caller controls.
        if not isinstance(field_type, GraphQLList) or key[0].startswith("__"):
            return 1
        return _size(LIST_SIZES.get(key, DEFAULT_LIST_SIZE), arguments)

    def _arguments(self, definition: GraphQLField | None, node: FieldNode) -> Arguments:
        def argument(name: str) -> Any:
            for given in node.arguments or ():
                if given.name.value == name:
                    if _uses_variable(given.value):
                        self.uses_variables = True
                    value = value_from_ast_untyped(given.value, self.variables)
                    if value is not Undefined:
                        return value
                    break  # a variable not given: the argument's default applies
            declared = definition.args.get(name) if definition else None
            if declared is None or declared.default_value is Undefined:
                return None
            return declared.default_value

        return argument


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
    decides; one priced by a variable is measured again with the request's
    variables (`document_limits.request_limit_errors`)."""

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
