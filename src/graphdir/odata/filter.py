"""``$filter`` and ``$search`` for directory collections, parsed into :mod:`graphdir.query`.

``$filter`` text is tokenised and parsed by odata-query's SLY grammar
(:class:`odata_query.grammar.ODataLexer` / :class:`~odata_query.grammar.ODataParser`); this
module only walks the resulting AST into the neutral IR and enforces Graph's rules:

* **Whitelist** (concepts/includes/filter-directory-objects.md, copied in
  ``graph-docs/concepts-includes__filter-directory-objects__excerpt.md``): for each property
  of a resource, whether ``eq``, ``startsWith``, ``ge/le`` (also used for ``gt/lt``) and
  ``eq null`` work by default, only in advanced mode, or not at all. Property names match
  case-insensitively; the IR carries Graph's spelling. Additions marked [INF]: ``id`` (eq/in)
  on every resource, ``groupTypes/any()`` on groups (group-list.md), and the device and
  servicePrincipal tables, whose sections the excerpt omits (written from the current docs).
* **Advanced mode** (https://learn.microsoft.com/en-us/graph/aad-advanced-queries): ``ne``, ``not`` and ``endsWith``
  need ``ConsistencyLevel: eventual`` + ``$count=true``; without them they answer
  ``errors.advanced_operator(op)`` with ``op`` one of ``'ne'``, ``'not'``, ``'endsWith'``
  (the documented message for endsWith). ``ne`` and ``not`` then work wherever ``eq`` works;
  ``endsWith`` only on ``mail``, ``otherMails``, ``userPrincipalName``, ``proxyAddresses``
  (collections through ``any``); ``in`` works wherever ``eq`` works.
* A property/operator cell that is **Advanced-only**, used in default mode, answers
  ``errors.unsupported_filter_property(prop, Resource)`` — what Graph was observed to send
  (e.g. ``startsWith(companyName,'x')`` on users without the advanced parameters,
  microsoft-graph-docs issues #17277, #12591, #13583). A property or cell that is not in the
  table at all answers the same error (documented for ``createdDateTime`` on groups).
  Checks run left to right: for each clause the operator's mode first, then the property.
* **directoryObject** (polymorphic lists such as ``/groups/{id}/members``): the union of the
  user and group tables, each cell taking the more permissive of the two ("Default" beats
  "Advanced"); errors name resource ``'DirectoryObject'``.
* Syntax errors and unknown functions answer ``400 BadRequest`` ``Invalid filter clause: …``
  (``errors.invalid_filter``) with Microsoft.OData-style details; a literal of the wrong type
  answers ``400 Request_BadRequest`` with OData's "incompatible types" message. Any input
  string raises only :class:`~graphdir.errors.GraphError` (inputs over 2048 characters and
  expressions nested over 48 levels are refused up front).

``$search`` (https://learn.microsoft.com/en-us/graph/search-query-parameter, group-list.md, group-list-members.md) is a tiny hand-written grammar:
``"prop:token"`` clauses combined with ``AND``/``OR`` (``AND`` binds tighter) and parentheses.
Quotes are required; ``\\"`` and ``\\\\`` escape inside them. Invalid syntax or a property
that is not searchable answers ``400 Request_UnsupportedQuery`` ``Invalid $search clause: …``
(``errors.invalid_search``). Searchable: displayName/description on groups (plus mail and
mailNickname, which group-list.md says fall back to prefix matching), displayName, mail,
userPrincipalName, givenName, surname on users, the union of both for directoryObject.
"""

from __future__ import annotations

import datetime as dt
from typing import NoReturn, cast

from odata_query import ast
from odata_query import exceptions as oq_exc
from odata_query.grammar import ODATA_FUNCTIONS, ODataLexer, ODataParser
from sly.lex import Token

from graphdir import errors
from graphdir.odata.filter_tables import FILTER_TABLES, MAX_DEPTH, MAX_FILTER_LENGTH, RESOURCE_NAMES, FilterProp, Kind, Support
from graphdir.odata.search import parse_search
from graphdir.query import (
    And,
    AnyEndsWith,
    AnyEq,
    CmpOp,
    Compare,
    EndsWith,
    In,
    Not,
    Or,
    Predicate,
    Scalar,
    StartsWith,
)

# --- literals ------------------------------------------------------------------------------

_EDM_KIND = {
    "string": "Edm.String", "guid": "Edm.String", "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset", "strings": "Collection(Edm.String)",
}
_EDM_LITERAL: dict[type, str] = {
    ast.String: "Edm.String", ast.Boolean: "Edm.Boolean", ast.Integer: "Edm.Int32",
    ast.Float: "Edm.Double", ast.GUID: "Edm.Guid", ast.DateTime: "Edm.DateTimeOffset",
    ast.Date: "Edm.Date", ast.Time: "Edm.TimeOfDay", ast.Duration: "Edm.Duration",
    ast.Geography: "Edm.Geography", ast.List: "Collection", ast.Null: "null",
}
_OP_KIND = {
    "eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
    "lt": "LessThan", "le": "LessThanOrEqual", "in": "In",
}
_COMPARATORS: dict[type, str] = {
    ast.Eq: "eq", ast.NotEq: "ne", ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.In: "in",
}


def _incompatible(kind: Kind, lit: ast._Node, op: str) -> errors.GraphError:
    """OData's type-check failure (Microsoft.OData ``IncompatibleOperandsError``)."""
    return errors.bad_request(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{_EDM_KIND[kind]}' and '{_EDM_LITERAL.get(type(lit), 'Edm.Untyped')}' for operator kind "
        f"'{_OP_KIND[op]}'."
    )


def _no_signature(func: str) -> errors.GraphError:
    return errors.bad_request(
        f"No function signature for the function with name '{func}' matches the specified arguments. "
        f"The function signatures considered are: {func}(Edm.String Nullable=true, Edm.String Nullable=true)."
    )


def _datetime_text(lit: ast.DateTime | ast.Date) -> str:
    """Normalise a DateTimeOffset/Date literal to the store's ``YYYY-MM-DDTHH:MM:SS[.f]Z`` (UTC)."""
    try:
        if isinstance(lit, ast.Date):
            value = dt.datetime.combine(dt.date.fromisoformat(lit.val), dt.time(), dt.UTC)
        else:
            value = dt.datetime.fromisoformat(lit.val)
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise errors.bad_request(
            f"The DateTimeOffset text '{lit.val}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' "
            "and each field value is within valid range."
        ) from None
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _scalar(kind: Kind, lit: ast._Node, op: str) -> Scalar:
    """Type-check one literal against a property kind and return its IR value."""
    if kind in ("string", "guid") and isinstance(lit, ast.String):
        return lit.val
    if kind == "guid" and isinstance(lit, ast.GUID):
        return lit.val
    if kind == "bool" and isinstance(lit, ast.Boolean):
        return lit.val.lower() == "true"
    if kind == "datetime" and isinstance(lit, (ast.DateTime, ast.Date)):
        return _datetime_text(lit)
    raise _incompatible(kind, lit, op)


# --- token stream fixes --------------------------------------------------------------------

_FUNCTIONS = {name.lower(): name for name in ODATA_FUNCTIONS}
_LITERAL_TOKENS = frozenset(
    {"STRING", "INTEGER", "DECIMAL", "BOOLEAN", "NULL", "GUID", "DATE", "DATETIME", "TIME", "DURATION"}
)


def _token(type_: str, value: object, like: Token) -> Token:
    tok = Token()
    tok.type, tok.value, tok.lineno, tok.index = type_, value, like.lineno, like.index
    return tok


def _tokens(text: str) -> list[Token]:
    """Tokenise with odata-query's lexer, then adapt a few Graph spellings the grammar misses.

    * function names are case-insensitive (``startsWith``, ``endsWith``);
    * ``NOT(...)`` without a space is the ``not`` operator, not a function call;
    * ``any (`` may have a space before the parenthesis (aad-advanced-queries.md example);
    * ``x in ('a')`` is a one-item list (the grammar only knows ``('a',)``).
    """
    raw = list(ODataLexer().tokenize(text))
    if not text.isascii():
        _refuse_non_ascii(raw, text)
    out: list[Token] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        if tok.type == "ODATA_IDENTIFIER" and nxt is not None and nxt.type == "(" and not tok.value.namespace:
            low = tok.value.name.lower()
            if low == "not":
                tok = _token("NOT", ast.Not(), tok)
            elif low in _FUNCTIONS:
                tok = _token("ODATA_IDENTIFIER", ast.Identifier(_FUNCTIONS[low]), tok)
        elif tok.type in ("ANY", "ALL") and nxt is not None and nxt.type == "WS":
            if i + 2 < len(raw) and raw[i + 2].type == "(":
                out.append(tok)
                i += 2
                continue
        elif tok.type == "IN" and nxt is not None and nxt.type == "(":
            j = i + 2
            j += j < len(raw) and raw[j].type == "WS"
            if j < len(raw) and raw[j].type in _LITERAL_TOKENS:
                k = j + 1
                k += k < len(raw) and raw[k].type == "WS"
                if k < len(raw) and raw[k].type == ")":
                    out.extend(raw[i:k])
                    out.append(_token(",", ",", raw[k]))
                    i = k
                    continue
        out.append(tok)
        i += 1
    return out


def _refuse_non_ascii(tokens: list[Token], text: str) -> None:
    """Outside string literals only ASCII: the lexer's ``\\d`` and ``\\s`` would take ``５`` for a
    digit and an ideographic space for a blank, which Graph's OData parser does not."""
    for tok, nxt in zip(tokens, [*tokens[1:], None], strict=True):
        if tok.type == "STRING":
            continue
        end = len(text) if nxt is None else nxt.index
        for pos in range(tok.index, end):
            if not text[pos].isascii():
                raise errors.invalid_filter(f"Syntax error: character '{text[pos]}' is not valid at position {pos} in '{text}'.")


def _syntax_detail(exc: Exception, text: str) -> str:
    """Microsoft.OData-style detail for a parse failure."""
    if isinstance(exc, oq_exc.TokenizingException):
        pos = int(getattr(exc.token, "index", 0) or 0)
        char = text[pos] if 0 <= pos < len(text) else ""
        return f"Syntax error: character '{char}' is not valid at position {pos} in '{text}'."
    if isinstance(exc, oq_exc.ParsingException):
        pos = len(text) if exc.eof or exc.token is None else int(exc.token.index)
        return f"Syntax error at position {pos} in '{text}'."
    if isinstance(exc, oq_exc.UnknownFunctionException):
        return (
            f"An unknown function with name '{exc.function_name}' was found. This may also be a function "
            "import or a key lookup on a navigation property, which is not allowed."
        )
    if isinstance(exc, oq_exc.ArgumentCountException):
        return f"No function signature for the function with name '{exc.function_name}' matches the specified arguments."
    return f"The expression '{text}' is not valid."


def _parse_ast(text: str) -> ast._Node:
    try:
        node = ODataParser().parse(iter(_tokens(text)))
    except errors.GraphError:
        raise
    except Exception as exc:  # noqa: BLE001 - odata-query/sly raise assorted errors; all are 400
        raise errors.invalid_filter(_syntax_detail(exc, text)) from None
    if not isinstance(node, ast._Node):
        raise errors.invalid_filter(f"Syntax error at position {len(text)} in '{text}'.")
    return node


# --- AST -> IR ------------------------------------------------------------------------------

def _path(node: ast._Node) -> str | None:
    """``a`` or ``a/b`` as written, or None when the node is not a property path."""
    if isinstance(node, ast.Identifier):
        return None if node.namespace else node.name
    if isinstance(node, ast.Attribute) and isinstance(node.attr, str):
        owner = _path(node.owner)
        return None if owner is None else f"{owner}/{node.attr}"
    return None


def _func_name(func: ast.Identifier) -> str:
    return ".".join((*func.namespace, func.name))


def _first_property(node: object, depth: int = 0) -> str | None:
    """The first property path mentioned anywhere in ``node`` (for error messages)."""
    if depth > MAX_DEPTH or not isinstance(node, ast._Node):
        return None
    found = _path(node)
    if found is not None:
        return found
    if isinstance(node, ast.CollectionLambda):
        return _first_property(node.owner, depth + 1)
    children: list[object] = []
    for attr in ("left", "right", "operand", "args", "val", "owner", "param"):
        value = getattr(node, attr, None)
        children.extend(value if isinstance(value, list) else [value])
    for child in children:
        found = _first_property(child, depth + 1)
        if found is not None:
            return found
    return None


class _Walker:
    """Translate one parsed ``$filter`` into IR, checking the resource's whitelist."""

    def __init__(self, resource: str, advanced: bool) -> None:
        self.table = FILTER_TABLES[resource]
        self.resource = RESOURCE_NAMES[resource]
        self.advanced = advanced

    # errors -------------------------------------------------------------------------------
    def _need_advanced(self, op: str) -> None:
        if not self.advanced:
            raise errors.advanced_operator(op)

    def _unsupported(self, prop: str) -> NoReturn:
        raise errors.unsupported_filter_property(prop, self.resource)

    def _shape(self, node: ast._Node) -> NoReturn:
        """A valid OData expression that the directory does not support."""
        prop = _first_property(node)
        if prop is not None:
            self._unsupported(prop)
        raise errors.unsupported_query("Unsupported Query.")

    def _check(self, prop: str, support: Support) -> None:
        if support == "-" or (support == "A" and not self.advanced):
            self._unsupported(prop)

    def _lookup(self, node: ast._Node) -> tuple[str, FilterProp]:
        written = _path(node)
        if written is None:
            self._shape(node)
        spec = self.table.get(written.lower())
        if spec is None:
            self._unsupported(written)
        return written, spec

    # boolean expressions ------------------------------------------------------------------
    def expr(self, node: ast._Node, depth: int) -> Predicate:
        if depth > MAX_DEPTH:
            raise errors.invalid_filter("The filter expression is nested too deeply.")
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._need_advanced("not")
            return Not(self.expr(node.operand, depth + 1))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.CollectionLambda):
            return self._lambda(node, depth)
        if isinstance(node, ast._Literal) and not isinstance(node, ast.Boolean):
            raise errors.invalid_filter("The $filter expression must evaluate to a single boolean value.")
        self._shape(node)

    def _boolop(self, node: ast.BoolOp, depth: int) -> Predicate:
        """Flatten ``a and b and c`` (a left-deep tree) iteratively into one And/Or."""
        kind = type(node.op)
        operands: list[ast._Node] = []
        stack: list[ast._Node] = [node]
        while stack:
            cur = stack.pop()
            if isinstance(cur, ast.BoolOp) and type(cur.op) is kind:
                stack.extend((cur.right, cur.left))
            else:
                operands.append(cur)
        items = tuple(self.expr(o, depth + 1) for o in operands)
        return And(items) if kind is ast.And else Or(items)

    def _compare(self, node: ast.Compare) -> Predicate:
        op = _COMPARATORS.get(type(node.comparator))
        if op is None:  # pragma: no cover - the grammar only builds the comparators above
            self._shape(node)
        if op == "ne":
            self._need_advanced("ne")
        left = node.left
        if isinstance(left, ast.UnaryOp) and isinstance(left.op, ast.Not):
            # ``not x eq y`` parses as ``(not x) eq y`` (not binds tighter than eq).
            self._need_advanced("not")
            raise errors.invalid_filter(
                "A unary operator with an incompatible type was detected. Found operand type "
                "'Edm.String' for operator kind 'Not'."
            )
        written, spec = self._lookup(left)
        right = node.right
        if op == "in":
            if not isinstance(right, ast.List):  # pragma: no cover - grammar guarantees a list
                self._shape(node)
            if spec.kind == "strings":
                raise _incompatible(spec.kind, right, "in")
            values = tuple(
                None if isinstance(v, ast.Null) else _scalar(spec.kind, v, "in") if isinstance(v, ast._Literal)
                else self._shape(node)
                for v in right.val
            )
            self._check(written, spec.eq)
            if None in values:
                self._check(written, spec.null)
            return In(spec.name, values)
        if not isinstance(right, ast._Literal) or isinstance(right, ast.List):
            self._shape(node)
        cmp_op = cast(CmpOp, op)
        if isinstance(right, ast.Null):
            if op not in ("eq", "ne"):
                self._unsupported(written)
            self._check(written, spec.null)
            return Compare(spec.name, cmp_op, None)
        if spec.kind == "strings":
            raise _incompatible(spec.kind, right, op)
        value = _scalar(spec.kind, right, op)
        self._check(written, spec.eq if op in ("eq", "ne") else spec.range)
        return Compare(spec.name, cmp_op, value)

    def _call(self, node: ast.Call) -> Predicate:
        name = _func_name(node.func)
        low = name.lower()
        if low not in ("startswith", "endswith"):
            if node.func.namespace and node.func.namespace != ("geo",):
                raise errors.invalid_filter(_syntax_detail(oq_exc.UnknownFunctionException(name), ""))
            self._shape(node)
        if low == "endswith":
            self._need_advanced("endsWith")
        if len(node.args) != 2:  # pragma: no cover - the parser checks the arity
            raise _no_signature(low)
        written, spec = self._lookup(node.args[0])
        arg = node.args[1]
        if spec.kind not in ("string", "guid") or not isinstance(arg, ast.String):
            if isinstance(arg, ast._Literal):
                raise _no_signature(low)
            self._shape(node)
        if low == "startswith":
            self._check(written, spec.starts)
            return StartsWith(spec.name, arg.val)
        self._check(written, spec.ends)
        return EndsWith(spec.name, arg.val)

    # lambdas on string collections ---------------------------------------------------------
    def _lambda(self, node: ast.CollectionLambda, depth: int) -> Predicate:
        written, spec = self._lookup(node.owner)
        if spec.kind != "strings" or not isinstance(node.operator, ast.Any) or node.lambda_ is None:
            self._unsupported(written)
        var = node.lambda_.identifier.name
        return self._lambda_body(node.lambda_.expression, var, written, spec, depth + 1)

    def _lambda_body(self, body: ast._Node, var: str, written: str, spec: FilterProp, depth: int) -> Predicate:
        if depth > MAX_DEPTH:
            raise errors.invalid_filter("The filter expression is nested too deeply.")

        def is_var(n: ast._Node) -> bool:
            return isinstance(n, ast.Identifier) and not n.namespace and n.name == var

        if isinstance(body, ast.BoolOp):
            if isinstance(body.op, ast.And):
                raise errors.unsupported_query(f"Complex query on property {written} is not supported.")
            return Or((self._lambda_body(body.left, var, written, spec, depth + 1),
                       self._lambda_body(body.right, var, written, spec, depth + 1)))
        if isinstance(body, ast.Compare) and is_var(body.left):
            op = _COMPARATORS.get(type(body.comparator), "")
            if op == "ne":
                self._need_advanced("ne")
            if op == "eq" and isinstance(body.right, ast._Literal) and not isinstance(body.right, ast.List):
                value = _scalar("string", body.right, "eq")
                self._check(written, spec.eq)
                return AnyEq(spec.name, str(value))
            if op == "in" and isinstance(body.right, ast.List):
                values = [_scalar("string", v, "in") for v in body.right.val]
                self._check(written, spec.eq)
                items = tuple(AnyEq(spec.name, str(v)) for v in values)
                return items[0] if len(items) == 1 else Or(items)
            self._unsupported(written)
        if isinstance(body, ast.Call) and _func_name(body.func).lower() in ("startswith", "endswith"):
            low = _func_name(body.func).lower()
            if low == "endswith":
                self._need_advanced("endsWith")
            if len(body.args) != 2 or not is_var(body.args[0]):
                self._unsupported(written)
            arg = body.args[1]
            if not isinstance(arg, ast.String):
                raise _no_signature(low)
            if low == "startswith":
                self._check(written, spec.starts)
                return AnyEq(spec.name, arg.val, prefix=True)
            self._check(written, spec.ends)
            return AnyEndsWith(spec.name, arg.val)
        if isinstance(body, ast.UnaryOp) and isinstance(body.op, ast.Not):
            self._need_advanced("not")
            raise errors.unsupported_query(f"Complex query on property {written} is not supported.")
        self._unsupported(written)


def parse_filter(text: str, resource: str, advanced: bool) -> Predicate:
    """Parse a ``$filter`` value for ``resource`` into IR (https://learn.microsoft.com/en-us/graph/aad-advanced-queries, filter-directory-objects.md).

    ``resource`` is one of :data:`FILTER_TABLES`' keys; ``advanced`` is true when the request
    carries ``ConsistencyLevel: eventual`` and ``$count=true``. Raises only GraphError.
    """
    if resource not in FILTER_TABLES:
        raise ValueError(f"unknown filter resource {resource!r}")
    if len(text) > MAX_FILTER_LENGTH:
        raise errors.invalid_filter(f"The filter expression is longer than {MAX_FILTER_LENGTH} characters.")
    if not text.strip():
        raise errors.invalid_filter("The filter expression is empty.")
    if "\x00" in text:  # no directory string holds one (docs/scaling.md#where-postgresql-differs-from-sqlite)
        raise errors.invalid_filter("The filter expression holds a NUL character.")
    node = _parse_ast(text)
    try:
        return _Walker(resource, advanced).expr(node, 0)
    except errors.GraphError:
        raise
    except Exception:  # noqa: BLE001 - last line of defence: any input answers a Graph error
        raise errors.invalid_filter(f"The expression '{text}' is not valid.") from None

__all__ = ["parse_filter", "parse_search"]
