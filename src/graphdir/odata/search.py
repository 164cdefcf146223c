"""``$search`` for directory collections (https://learn.microsoft.com/en-us/graph/search-query-parameter, group-list.md, group-list-members.md).

A tiny grammar: ``"prop:token"`` clauses combined with ``AND``/``OR`` (``AND`` binds tighter)
and parentheses; quotes are required. Invalid syntax or a property that is not searchable
answers ``400 Request_UnsupportedQuery`` ``Invalid $search clause: …``.
"""

from __future__ import annotations

import re
from typing import Literal, NoReturn

from graphdir import errors
from graphdir.odata.filter_tables import MAX_DEPTH, MAX_FILTER_LENGTH, RESOURCE_NAMES, SEARCHABLE
from graphdir.query import Search, SearchTerm

_SEARCH_TOKEN = re.compile(r'\s*(?:(")|(\()|(\))|([A-Za-z]+)|(\S))')
SearchNode = SearchTerm | Search


class _SearchParser:
    """Recursive descent over ``term (AND|OR term)*`` with parentheses; AND binds tighter."""

    def __init__(self, text: str, resource: str) -> None:
        self.text = text
        self.pos = 0
        self.resource = resource
        self.allowed = {p.lower(): p for p in SEARCHABLE[resource]}

    def fail(self, detail: str) -> NoReturn:
        raise errors.invalid_search(detail)

    def peek(self) -> tuple[str, str, int]:
        """Next token as ``(kind, text, end)`` without consuming it; kind '' at the end."""
        m = _SEARCH_TOKEN.match(self.text, self.pos)
        if m is None:
            return "", "", len(self.text)
        if m.group(1):
            return '"', '"', m.end()
        if m.group(2) or m.group(3):
            return m.group(0).strip(), m.group(0).strip(), m.end()
        if m.group(4):
            return "word", m.group(4), m.end()
        return "char", m.group(5), m.end()

    def quoted(self, start: int) -> SearchTerm:
        out: list[str] = []
        i = start
        while i < len(self.text):
            ch = self.text[i]
            if ch == "\\" and i + 1 < len(self.text) and self.text[i + 1] in '"\\':
                out.append(self.text[i + 1])
                i += 2
                continue
            if ch == '"':
                self.pos = i + 1
                return self.term("".join(out))
            out.append(ch)
            i += 1
        self.fail(f"missing closing quote for the clause starting at position {start - 1}.")

    def term(self, clause: str) -> SearchTerm:
        prop, sep, token = clause.partition(":")
        if not sep:
            self.fail(f"the clause \"{clause}\" must have the form \"property:value\".")
        canonical = self.allowed.get(prop.strip().lower())
        if canonical is None:
            self.fail(f"property '{prop.strip()}' is not searchable on resource '{RESOURCE_NAMES[self.resource]}'.")
        if not token.strip():
            self.fail(f"the clause \"{clause}\" has no search value.")
        return SearchTerm(canonical, token.strip())

    def primary(self, depth: int) -> SearchNode:
        kind, text, end = self.peek()
        if kind == '"':
            return self.quoted(end)
        if kind == "(":
            if depth > MAX_DEPTH:
                self.fail("the expression is nested too deeply.")
            self.pos = end
            node = self.expr(depth + 1)
            kind, _, end = self.peek()
            if kind != ")":
                self.fail(f"expected ')' at position {self.pos}.")
            self.pos = end
            return node
        what = "the end of the expression" if not kind else f"'{text}'"
        self.fail(f"expected a quoted \"property:value\" clause at position {self.pos}, found {what}.")

    def chain(self, keyword: Literal["AND", "OR"], depth: int) -> SearchNode:
        items: list[SearchNode] = [self.primary(depth) if keyword == "AND" else self.chain("AND", depth)]
        while True:
            kind, text, end = self.peek()
            if kind != "word" or text.upper() != keyword:
                break
            self.pos = end
            items.append(self.primary(depth) if keyword == "AND" else self.chain("AND", depth))
        if len(items) == 1:
            return items[0]
        flat: list[SearchNode] = []
        for item in items:
            flat.extend(item.terms if isinstance(item, Search) and item.op == keyword else (item,))
        return Search(keyword, tuple(flat))

    def expr(self, depth: int) -> SearchNode:
        return self.chain("OR", depth)

    def parse(self) -> Search:
        node = self.expr(0)
        kind, text, _ = self.peek()
        if kind:
            if kind == "word" and text.upper() == "NOT":
                self.fail("the NOT operator is not supported.")
            self.fail(f"unexpected '{text}' at position {self.pos}; join clauses with AND or OR.")
        return node if isinstance(node, Search) else Search("AND", (node,))


def parse_search(text: str, resource: str = "group") -> Search:
    """Parse a ``$search`` value (https://learn.microsoft.com/en-us/graph/search-query-parameter) such as ``"displayName:Video" OR "description:prod"``.

    Terms match when the property has a word starting with the token (tokenised on spaces,
    ``_``, ``-``, ``.``, ``@``), case-insensitively; see :func:`graphdir.store.sqlfilter.compile_search`.
    """
    if resource not in SEARCHABLE:
        raise ValueError(f"unknown search resource {resource!r}")
    if len(text) > MAX_FILTER_LENGTH:
        raise errors.invalid_search(f"the expression is longer than {MAX_FILTER_LENGTH} characters.")
    if not text.strip():
        raise errors.invalid_search("the expression is empty.")
    if "\x00" in text:  # no directory string holds one (docs/scaling.md#where-postgresql-differs-from-sqlite)
        raise errors.invalid_search("the expression holds a NUL character.")
    return _SearchParser(text, resource).parse()
