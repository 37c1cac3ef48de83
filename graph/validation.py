"""Limits on what one request may ask, each refused with a clear error before any work.

- ``prescan``: tokens and nesting of the raw document, before the parser recurses into it;
- ``too_complex``: depth, aliases and a node budget in the spirit of GitHub's (each
  connection's ``first``/``last`` times those of the connections around it);
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    Source,
    VariableNode,
    get_named_type,
    parse,
)  # fmt: skip
from graphql.language import Lexer, TokenKind

DEFAULT_PAGE = 20
MAX_PAGE = 100


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


@lru_cache(maxsize=1024)
def prescan(query: str, max_tokens: int, max_nesting: int) -> str | None:
    """Why the document is too big or too deep to parse (None if it is fine).

    Runs before parsing: the parser and validator recurse once per nesting level, so a
    document nested hundreds deep must be refused before it reaches them.
    """
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


@lru_cache(maxsize=1024)
def parsed(query: str) -> DocumentNode | GraphQLError:
    """The parsed document, or its syntax error (cached: the same documents come again and again)."""
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


def too_complex(
    limits: Limits, document: DocumentNode, schema: Any, variables: dict, name: str | None
) -> TooComplex | None:
    """Why the operation is over ``limits``' depth, aliases or node budget (None if within).

    Checked once the variables are known (``first: $n``), for HTTP at the door and for
    WebSocket operations as they start."""
    return _problem(limits, document, schema, variables or {}, name)


def _problem(limits: Limits, document: Any, schema: Any, variables: dict, name: str | None) -> TooComplex | None:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    chosen = operation_of(document, name)
    for operation in [chosen] if chosen is not None else []:
        root = schema.get_root_type(operation.operation)
        if root is None:
            return None
        walk = _Walk(schema, fragments, variables)
        walk.selections(operation.selection_set, root, depth=1, multiplier=1)
        if walk.depth > limits.max_depth:
            message = f"The query is {walk.depth} levels deep; the limit is {limits.max_depth}"
        elif walk.aliases > limits.max_aliases:
            message = f"The query uses {walk.aliases} aliases; the limit is {limits.max_aliases}"
        elif walk.nodes > limits.max_nodes:
            message = (
                f"The query could return {walk.nodes} nodes; the limit is {limits.max_nodes}. "
                "Ask for smaller pages (first/last) in nested connections."
            )
        else:
            return None
        return TooComplex(message, depth=walk.depth, aliases=walk.aliases, nodes=walk.nodes)
    return None


class _Walk:
    """Depth, aliases and nodes of an operation, following fragments (each at most once per path)."""

    def __init__(self, schema: Any, fragments: dict[str, Any], variables: dict[str, Any]) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables
        self.depth = self.aliases = self.nodes = 0

    def selections(
        self, selection_set: Any, parent: Any, depth: int, multiplier: int, seen: frozenset = frozenset()
    ) -> None:
        if selection_set is None:
            return
        self.depth = max(self.depth, depth)
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, depth, multiplier, seen)
            elif isinstance(selection, InlineFragmentNode):
                target = parent
                if selection.type_condition is not None:
                    target = self.schema.get_type(selection.type_condition.name.value) or parent
                self.selections(selection.selection_set, target, depth, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value) or parent
                self.selections(fragment.selection_set, target, depth, multiplier, seen | {name})

    def field(self, node: FieldNode, parent: Any, depth: int, multiplier: int, seen: frozenset) -> None:
        if node.alias is not None:
            self.aliases += 1
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(node.name.value)
        if definition is None or node.selection_set is None:
            return
        named = get_named_type(definition.type)
        if named.name.endswith("Connection"):
            multiplier *= max(self.page(node), 1)
            self.nodes += multiplier
        self.selections(node.selection_set, named, depth + 1, multiplier, seen)

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
