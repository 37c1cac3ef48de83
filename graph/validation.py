"""Limits on what one request may ask, each refused with a clear error before any work.

- ``prescan``: tokens and nesting of the raw document, before the parser recurses into it;
- ``limit_rules``: depth, aliases and a node budget in the spirit of GitHub's (each
  connection's ``first``/``last`` times those of the connections around it, each to-many list
  counted as ``LIST_SIZE`` items), as graphql-core validation rules. They need the request's
  variables (``first: $n``), so they are made per request. The schema (graph/schema.py), the
  compiled path (graph/fastpath.py) and the door (``too_complex``) all run these same rules.

Work per document (``prescan``, ``parsed``, ``measure``) is cached in
``graph.documents.DocumentCache``: bounded, keyed by a digest, large documents not kept.
``measure`` also gives the nodes an operation may return: its cost, reported to clients.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    Source,
    TypeInfo,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    parse,
)  # fmt: skip
from graphql.language import Lexer, TokenKind
from graphql.language.visitor import SKIP

from graph.documents import DocumentCache

DEFAULT_PAGE = 20
MAX_PAGE = 100
#: what a plain to-many list of objects (``ticket.issues``, ``ticket.activities``) counts for in
#: the node budget: it has no page size, so it is assumed to be as long as the largest page
LIST_SIZE = MAX_PAGE


@dataclass(frozen=True)
class Limits:
    """The limits in force; see the README's configuration table."""

    max_body_bytes: int = 1_000_000
    max_tokens: int = 5_000
    max_depth: int = 12
    max_aliases: int = 30
    max_nodes: int = 25_000
    max_batch: int = 10
    max_variables_depth: int = 12
    rate_per_minute: int = 1_200
    rate_burst: int = 200


class TooComplex(GraphQLError):
    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": "QUERY_TOO_COMPLEX", **extensions})


_OPEN = {TokenKind.BRACE_L, TokenKind.PAREN_L, TokenKind.BRACKET_L}
_CLOSE = {TokenKind.BRACE_R, TokenKind.PAREN_R, TokenKind.BRACKET_R}

_PRESCANS: DocumentCache[str | None] = DocumentCache(max_entries=1024)
#: parsed documents, shared by the door, the schema and the compiled path
DOCUMENTS: DocumentCache[DocumentNode | GraphQLError] = DocumentCache(max_entries=1024)
_MEASURES: DocumentCache[Measured] = DocumentCache(max_entries=1024)
#: the largest variables (as JSON bytes) whose limit answer is remembered
MAX_REMEMBERED_VARIABLES = 1024


def prescan(query: str, max_tokens: int, max_nesting: int) -> str | None:
    """Why the document is too big or too deep to parse (None if it is fine).

    Runs before parsing: the parser and validator recurse once per nesting level, so a
    document nested hundreds deep must be refused before it reaches them.
    """
    return _PRESCANS.get(query, lambda: _prescan(query, max_tokens, max_nesting), max_tokens, max_nesting)


def _prescan(query: str, max_tokens: int, max_nesting: int) -> str | None:
    lexer, tokens, depth = Lexer(Source(query)), 0, 0
    try:
        while (token := lexer.advance()).kind != TokenKind.EOF:
            tokens += 1
            if tokens > max_tokens:
                return f"The document has more than {max_tokens} tokens"
            if token.kind in _OPEN:
                depth += 1
                if depth > max_nesting:
                    return f"The document is nested more than {max_nesting} levels deep"
            elif token.kind in _CLOSE:
                depth -= 1
    except GraphQLError:
        return None  # a syntax error: the parser will report it properly
    return None


def variables_too_deep(value: Any, limit: int) -> bool:
    """Whether JSON variables nest deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def parsed(query: str) -> DocumentNode | GraphQLError:
    """The parsed document, or its syntax error (cached: the same documents come again and again)."""
    return DOCUMENTS.get(query, lambda: _parse(query))


def _parse(query: str) -> DocumentNode | GraphQLError:
    try:
        return parse(query)
    except GraphQLError as error:
        return error


def operation_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the named one, or the only one."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == name]
    return operations[0] if len(operations) == 1 else None


def limit_rules(
    limits: Limits, variables: dict[str, Any] | None, operation_name: str | None = None
) -> list[type[ASTValidationRule]]:
    """The validation rules holding one request to ``limits`` (its variables give ``first: $n``).

    With ``operation_name``, only that operation is measured (the others do not run)."""

    class QueryLimitsRule(_QueryLimits):
        pass

    QueryLimitsRule.limits, QueryLimitsRule.variables = limits, variables or {}
    QueryLimitsRule.operation_name = operation_name
    return [QueryLimitsRule]


@dataclass(frozen=True)
class Measured:
    """Of one request: the errors of ``limit_rules``, and the nodes its operation may return
    (the largest of the operations measured; 0 where none is)."""

    errors: tuple[GraphQLError, ...]
    nodes: int


def limit_errors(
    schema: Any, document: DocumentNode, limits: Limits, variables: dict[str, Any] | None, name: str | None = None
) -> list[GraphQLError]:
    """The errors of ``limit_rules`` alone, for a document otherwise valid or checked elsewhere.

    The same as ``validate(schema, document, limit_rules(...))``, without graphql-core's walk
    of every node (the rule only looks at operations)."""
    return list(measure(schema, document, limits, variables, name).errors)


def measure(
    schema: Any, document: DocumentNode, limits: Limits, variables: dict[str, Any] | None, name: str | None = None
) -> Measured:
    """``limit_errors`` and the nodes of the operation. Remembered per document, operation,
    variables and limits: the door, the schema and the compiled path each ask about the same
    request, and the same documents come again and again."""
    source = document.loc.source.body if document.loc is not None else None
    try:
        given = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables else b""
    except TypeError:  # not JSON (a caller in Python): measured, not remembered
        source = None
    if source is None or len(given) > MAX_REMEMBERED_VARIABLES:
        return _measure(schema, document, limits, variables, name)
    key = hashlib.blake2b(given, digest_size=16).digest()  # orjson's bytes hold ~4 KiB each
    return _MEASURES.get(source, lambda: _measure(schema, document, limits, variables, name), name, key, limits)


def _measure(
    schema: Any, document: DocumentNode, limits: Limits, variables: dict[str, Any] | None, name: str | None
) -> Measured:
    errors: list[GraphQLError] = []
    context = ValidationContext(schema, document, TypeInfo(schema), errors.append)
    check = _QueryLimits(context)
    check.limits, check.variables, check.operation_name = limits, variables or {}, name
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            check.enter_operation_definition(definition)
    return Measured(tuple(errors), check.nodes)


def too_complex(
    limits: Limits, document: DocumentNode, schema: Any, variables: dict, name: str | None
) -> TooComplex | None:
    """Why the operation is over ``limits``' depth, aliases or node budget (None if within).

    Checked once the variables are known (``first: $n``), for HTTP at the door and for
    WebSocket operations as they start, by the same rules the schema runs."""
    if operation_of(document, name) is None:
        return None  # no operation to run: the schema says why
    for error in limit_errors(schema, document, limits, variables, name):
        if isinstance(error, TooComplex):
            return error
    return None


class _QueryLimits(ValidationRule):
    """Depth, aliases and nodes of each operation run, against ``limits`` (see ``limit_rules``)."""

    limits: Limits
    variables: dict[str, Any]
    operation_name: str | None
    #: the most nodes of an operation measured
    nodes: int = 0

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> Any:
        name = self.operation_name
        if name is not None and (node.name is None or node.name.value != name):
            return SKIP
        context: ValidationContext = self.context
        root = context.schema.get_root_type(node.operation)
        if root is None:
            return SKIP
        # a variable the request leaves out takes its default (``$n: Int = 100``)
        defaults = {
            definition.variable.name.value: int(definition.default_value.value)
            for definition in node.variable_definitions or ()
            if isinstance(definition.default_value, IntValueNode)
        }
        cost = _Measure(context, {**defaults, **self.variables}).selections(node.selection_set, root)
        self.nodes = max(self.nodes, cost.nodes)
        error = _verdict(self.limits, cost)
        if error is not None:
            self.report_error(error)
        return SKIP


def _verdict(limits: Limits, cost: _Cost) -> TooComplex | None:
    if cost.depth > limits.max_depth:
        message = f"The query is {cost.depth} levels deep; the limit is {limits.max_depth}"
    elif cost.aliases > limits.max_aliases:
        message = f"The query uses {cost.aliases} aliases; the limit is {limits.max_aliases}"
    elif cost.nodes > limits.max_nodes:
        message = (
            f"The query could return {cost.nodes} nodes; the limit is {limits.max_nodes}. "
            "Ask for smaller pages (first/last) in nested connections."
        )
    else:
        return None
    return TooComplex(message, depth=cost.depth, aliases=cost.aliases, nodes=cost.nodes)


@dataclass
class _Cost:
    """Of a selection set: levels (itself included), aliases, and nodes per item of its parent."""

    depth: int = 0
    aliases: int = 0
    nodes: int = 0


_NOTHING = _Cost()


class _Measure:
    """Measures selection sets, following fragments. Each fragment is measured once and its cost
    reused wherever it is spread: a chain of fragments each spreading the next twice would
    otherwise take 2ⁿ steps to walk."""

    def __init__(self, context: ValidationContext, variables: dict[str, Any]) -> None:
        self.context, self.schema, self.variables = context, context.schema, variables
        self.fragments: dict[str, _Cost] = {}

    def selections(self, selection_set: Any, parent: Any) -> _Cost:
        cost = _Cost(depth=1)
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.alias is not None:
                    cost.aliases += 1
                part = self.field(selection, parent)
                cost.depth = max(cost.depth, part.depth + 1 if part is not _NOTHING else 1)
            else:
                part = self.fragment(selection, parent)
                cost.depth = max(cost.depth, part.depth)
            cost.aliases += part.aliases
            cost.nodes += part.nodes
        return cost

    def fragment(self, selection: Any, parent: Any) -> _Cost:
        if isinstance(selection, InlineFragmentNode):
            target = parent
            if selection.type_condition is not None:
                target = self.schema.get_type(selection.type_condition.name.value) or parent
            return self.selections(selection.selection_set, target)
        if not isinstance(selection, FragmentSpreadNode):
            return _NOTHING
        name = selection.name.value
        if name in self.fragments:
            return self.fragments[name]
        definition: FragmentDefinitionNode | None = self.context.get_fragment(name)
        if definition is None:
            return _NOTHING
        self.fragments[name] = _NOTHING  # a cycle (refused by graphql-core's own rule) adds nothing
        target = self.schema.get_type(definition.type_condition.name.value) or parent
        cost = self.fragments[name] = self.selections(definition.selection_set, target)
        return cost

    def field(self, node: FieldNode, parent: Any) -> _Cost:
        """The field's subselection's cost, as the parent's items see it."""
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(node.name.value)
        if definition is None or node.selection_set is None:
            return _NOTHING
        named = get_named_type(definition.type)
        inner = self.selections(node.selection_set, named)
        items = self.items(node, definition, parent, named)
        if items is None:
            return inner
        return _Cost(inner.depth, inner.aliases, items + items * inner.nodes)

    def items(self, node: FieldNode, definition: Any, parent: Any, named: Any) -> int | None:
        """How many nodes the field may return, if it is a list (None for one object)."""
        if named.name.endswith("Connection"):
            return max(self.page(node), 1)
        plain_list = isinstance(get_nullable_type(definition.type), GraphQLList) and is_composite_type(named)
        if plain_list and node.name.value == "_entities" and parent is self.schema.query_type:
            return max(self.representations(node), 1)  # a federation gateway's references: as many as it sends
        if plain_list and not parent.name.endswith("Connection") and not named.name.startswith("__"):
            return LIST_SIZE  # a connection's own nodes/edges are its page, counted above
        return None

    def representations(self, node: FieldNode) -> int:
        """How many references ``_entities`` is given (inline or in a variable)."""
        for argument in node.arguments or ():
            if argument.name.value != "representations":
                continue
            value = argument.value
            if isinstance(value, ListValueNode):
                return len(value.values)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                return len(given) if isinstance(given, list) else 1
        return LIST_SIZE

    def page(self, node: FieldNode) -> int:
        """The page size a connection field asks for; sizes out of range are refused later,
        by the field itself, as BAD_USER_INPUT."""
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                if isinstance(value, IntValueNode):
                    return min(int(value.value), MAX_PAGE)
                if isinstance(value, VariableNode):
                    given = self.variables.get(value.name.value)
                    if isinstance(given, int):
                        return min(given, MAX_PAGE)
        return DEFAULT_PAGE
