"""Compile the neutral query IR (:mod:`graphdir.query`) to parameterised SQL.

The directory table is aliased ``o`` (columns ``id``, ``type``, ``display_name``, ``upn``,
``mail_nickname``, ``created``, ``deleted``, ``props``; ``props`` holds every Graph property
by its Graph name). Nothing user-provided is concatenated into SQL: values and JSON paths are
bound parameters, and property names are only ever looked up in the fixed maps below
(:data:`COLUMNS`, :data:`JSON_SCALARS`, :data:`JSON_COLLECTIONS`); an unknown name is a
programming error (``ValueError``).

Semantics (Graph, https://learn.microsoft.com/en-us/graph/aad-advanced-queries and filter-query-parameter.md):

* string comparisons are case-insensitive (ASCII folding, as SQLite's ``lower()``/``NOCASE``);
  ``id`` and ``userPrincipalName`` are stored lower-cased, so their values are lower-cased
  here instead, which keeps the primary key and the UPN index usable;
* ``startsWith``/``endsWith`` are ``LIKE`` patterns with ``%``, ``_`` and ``\\`` escaped;
* booleans compare to JSON ``true``/``false``; datetimes compare as instants;
* ``eq null`` is ``IS NULL``; ``ne v`` also matches objects whose value is null;
* ``not`` is two-valued: a clause on a missing value is false, so its negation is true;
* ``$search`` terms match when the property contains a word starting with the token, words
  being separated by spaces, ``_``, ``-``, ``.`` or ``@`` (an approximation of Entra's tokeniser).

Dialects: ``sqlite`` (``?`` placeholders, ``json_extract``/``json_each``) and ``postgresql``
(``%s`` placeholders, ``props`` text cast to JSONB, ``#>>``/``jsonb_array_elements_text``, text
compared under ``COLLATE "C"`` so that case folding is ASCII-only, as in SQLite). Each dialect
is a small table of expression builders (:class:`_Dialect`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from graphdir.query import (
    And,
    AnyEndsWith,
    AnyEq,
    Compare,
    EndsWith,
    In,
    Not,
    Or,
    Predicate,
    Search,
    SearchTerm,
    StartsWith,
)
from graphdir.store.base import InvalidInput

# Graph properties held in real columns.
COLUMNS: dict[str, str] = {
    "id": "o.id",
    "displayName": "o.display_name",
    "userPrincipalName": "o.upn",
    "mailNickname": "o.mail_nickname",
    "createdDateTime": "o.created",
    "deletedDateTime": "o.deleted",
}
# How a column reads for null tests (the store writes '' for a missing displayName).
_NULL_TEST = {"displayName": "NULLIF(o.display_name, '')"}
# Columns whose stored value is lower-case: compare against the lower-cased literal.
_LOWERED = frozenset({"id", "userPrincipalName"})
# Columns that compare case-insensitively (SQLite's ``COLLATE NOCASE`` column; ASCII folding).
_NOCASE = frozenset({"displayName"})

JSON_SCALARS: frozenset[str] = frozenset(
    {
        "accountEnabled", "ageGroup", "appId", "appOwnerOrganizationId",
        "approximateLastSignInDateTime", "city", "classification", "companyName",
        "consentProvidedForMinor", "country", "createdByAppId", "creationType", "department",
        "description", "deviceId", "employeeHireDate", "employeeId", "employeeType",
        "expirationDateTime", "externalUserState", "faxNumber", "givenName",
        "hasMembersWithLicenseErrors", "isAssignableToRole", "isCompliant",
        "isLicenseReconciliationNeeded", "isManaged", "isResourceAccount", "jobTitle", "mail",
        "mailEnabled", "manufacturer", "membershipRule", "membershipRuleProcessingState",
        "mobilePhone", "model", "officeLocation", "onPremisesImmutableId",
        "onPremisesLastSyncDateTime", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled", "operatingSystem", "operatingSystemVersion", "passwordPolicies",
        "postalCode", "preferredLanguage", "profileType", "registrationDateTime", "renewedDateTime",
        "securityEnabled", "servicePrincipalType", "showInAddressList", "state", "streetAddress",
        "surname", "trustType", "uniqueName", "usageLocation", "userType"
    }
    | {f"onPremisesExtensionAttributes/extensionAttribute{i}" for i in range(1, 16)}
)
JSON_COLLECTIONS: frozenset[str] = frozenset(
    {
        "alternativeNames", "businessPhones", "certificateUserIds", "groupTypes", "imAddresses",
        "infoCatalogs", "otherMails", "physicalIds", "proxyAddresses", "resourceBehaviorOptions",
        "resourceProvisioningOptions", "servicePrincipalNames", "tags"
    }
)
DATETIMES: frozenset[str] = frozenset(
    {
        "createdDateTime", "deletedDateTime", "expirationDateTime", "onPremisesLastSyncDateTime",
        "renewedDateTime", "employeeHireDate", "approximateLastSignInDateTime",
        "registrationDateTime"
    }
)

_SQL_OP = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_WORD_SEPARATORS = ("_", "-", ".", "@")

Frag = tuple[str, list[object]]


def like_escape(text: str) -> str:
    """Escape ``\\``, ``%`` and ``_`` for ``LIKE … ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class _Dialect:
    """The few expressions that differ between SQL dialects."""

    ph: str  # placeholder
    true: str
    false: str
    json_path: Callable[[str], object]  # Graph property path -> path parameter
    json_text: str  # SQL taking one path placeholder -> text/scalar value
    json_elements: str  # FROM-clause taking one path placeholder, yielding column ``value``
    json_bool: Callable[[str], str]  # wrap a json_text expression to compare with a boolean
    bool_param: Callable[[bool], object]
    instant: Callable[[str], str]  # wrap a text expression to compare as a timestamp
    ci_eq: Callable[[str, str], str]  # case-insensitive equality of (expr, placeholder)
    ci_like: Callable[[str, str], str]  # case-insensitive LIKE of (expr, placeholder)
    words: Callable[[str], str]  # expr -> ' ' || lower(expr) with separators turned into spaces
    #: an order comparison (gt/ge/lt/le) of a NOCASE column (displayName) with a string placeholder
    nocase_cmp: Callable[[str, str, str], str] = lambda expr, op, ph: f"{expr} {op} {ph}"  # SQLite: the column's NOCASE


def _sqlite_words(expr: str) -> str:
    out = f"lower({expr})"
    for sep in _WORD_SEPARATORS:
        out = f"replace({out}, '{sep}', ' ')"
    return f"(' ' || {out})"


SQLITE = _Dialect(
    ph="?",
    true="1",
    false="0",
    json_path=lambda prop: "$." + prop.replace("/", "."),
    json_text="json_extract(o.props, ?)",
    json_elements="json_each(o.props, ?)",
    json_bool=lambda expr: expr,
    bool_param=int,
    instant=lambda expr: f"julianday({expr})",
    ci_eq=lambda expr, ph: f"{expr} = {ph} COLLATE NOCASE",
    ci_like=lambda expr, ph: f"{expr} LIKE {ph} ESCAPE '\\'",
    words=_sqlite_words,
)

def _pg_text(expr: str) -> str:
    """A text expression under the bytewise "C" collation: ``lower()`` then folds ASCII letters only,
    like SQLite's ``lower()``, ``LIKE`` and ``NOCASE`` (non-ASCII letters are compared as they are)."""
    return f'(({expr}) COLLATE "C")'


def _pg_param(ph: str) -> str:
    return f'(({ph})::text COLLATE "C")'


POSTGRESQL = _Dialect(
    ph="%s",
    true="TRUE",
    false="FALSE",
    json_path=lambda prop: prop.split("/"),
    # props is stored as text, the exact JSON written (as in SQLite): cast to jsonb to read a value
    json_text=_pg_text("o.props::jsonb #>> %s"),
    # lax '$[*]': an array's elements, a scalar (or null) as one element, as SQLite's json_each
    json_elements="jsonb_array_elements_text(jsonb_path_query_array(o.props::jsonb #> %s, '$[*]')) AS j(value)",
    # JSON true/false; anything else is no boolean (SQLite's json_extract compares it unequal), never a cast error
    json_bool=lambda expr: f"(CASE {expr} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END)",
    bool_param=bool,
    instant=lambda expr: f"({expr})::timestamptz",
    ci_eq=lambda expr, ph: f"lower({_pg_text(expr)}) = lower({_pg_param(ph)})",
    ci_like=lambda expr, ph: f"lower({_pg_text(expr)}) LIKE lower({_pg_param(ph)}) ESCAPE '\\'",
    words=lambda expr: f"(' ' || translate(lower({_pg_text(expr)}), '{''.join(_WORD_SEPARATORS)}', '{' ' * len(_WORD_SEPARATORS)}'))",
    nocase_cmp=lambda expr, op, ph: f"lower({_pg_text(expr)}) {op} lower({_pg_param(ph)})",
)

DIALECTS: dict[str, _Dialect] = {"sqlite": SQLITE, "postgresql": POSTGRESQL}


class _Compiler:
    def __init__(self, dialect: str) -> None:
        try:
            self.d = DIALECTS[dialect]
        except KeyError:
            raise ValueError(f"unknown SQL dialect {dialect!r}") from None

    # property access ---------------------------------------------------------------------
    def scalar(self, prop: str) -> Frag:
        """SQL for one scalar property (column, or JSON value with the path as a parameter)."""
        if prop in COLUMNS:
            return COLUMNS[prop], []
        if prop in JSON_SCALARS:
            return self.d.json_text, [self.d.json_path(prop)]
        raise ValueError(f"property {prop!r} cannot be filtered")

    def elements(self, prop: str) -> Frag:
        if prop not in JSON_COLLECTIONS:
            raise ValueError(f"property {prop!r} is not a filterable collection")
        return self.d.json_elements, [self.d.json_path(prop)]

    # leaves ------------------------------------------------------------------------------------
    def compare(self, p: Compare) -> Frag:
        expr, params = self.scalar(p.prop)
        ph = self.d.ph
        if p.value is None:
            if p.op not in ("eq", "ne"):
                raise ValueError(f"cannot compare {p.prop!r} {p.op} null")
            expr = _NULL_TEST.get(p.prop, expr)
            return f"{expr} IS {'NOT ' if p.op == 'ne' else ''}NULL", params
        value = p.value
        op = _SQL_OP[p.op]
        if isinstance(value, bool):
            cond = f"{self.d.json_bool(expr)} {op} {ph}"
            args: list[object] = [*params, self.d.bool_param(value)]
        elif isinstance(value, (int, float)):
            cond, args = f"{expr} {op} {ph}", [*params, value]
        elif p.prop in DATETIMES:
            cond, args = f"{self.d.instant(expr)} {op} {self.d.instant(ph)}", [*params, value]
        elif p.prop in _LOWERED:
            cond, args = f"{expr} {op} {ph}", [*params, value.lower()]
        elif p.op in ("eq", "ne"):
            cond, args = self.d.ci_eq(expr, ph), [*params, value]
            if p.op == "ne":
                cond = f"NOT ({cond})"
        elif p.prop in _NOCASE:
            cond, args = self.d.nocase_cmp(expr, op, ph), [*params, value]
        else:
            cond, args = f"{expr} {op} {ph}", [*params, value]
        if p.op == "ne":
            # Graph's ne keeps objects where the property is null (in OData null is not equal to any value).
            return f"({_NULL_TEST.get(p.prop, expr)} IS NULL OR {cond})", [*params, *args]
        return cond, args

    def in_(self, p: In) -> Frag:
        values = [v for v in p.values if v is not None]
        strings = [v for v in values if isinstance(v, str)]
        if strings and len(strings) == len(p.values) and p.prop not in DATETIMES:
            # One IN list: lower-cased for lower-cased columns, NOCASE elsewhere (sqlite).
            expr, params = self.scalar(p.prop)
            marks = ", ".join([self.d.ph] * len(strings))
            if p.prop in _LOWERED:
                return f"{expr} IN ({marks})", [*params, *(v.lower() for v in strings)]
            if self.d is SQLITE:
                return f"{expr} COLLATE NOCASE IN ({marks})", [*params, *strings]
        parts = [self.compare(Compare(p.prop, "eq", v)) for v in values]
        if len(values) != len(p.values):
            parts.append(self.compare(Compare(p.prop, "eq", None)))
        return self.join("OR", parts)

    def like(self, prop: str, pattern: str) -> Frag:
        expr, params = self.scalar(prop)
        if prop in _LOWERED:
            pattern = pattern.lower()
        return self.d.ci_like(expr, self.d.ph), [*params, pattern]

    def any_(self, prop: str, pattern: str | None, value: str) -> Frag:
        src, params = self.elements(prop)
        cond = self.d.ci_like("value", self.d.ph) if pattern is not None else self.d.ci_eq("value", self.d.ph)
        return f"EXISTS (SELECT 1 FROM {src} WHERE {cond})", [*params, pattern if pattern is not None else value]

    # combinators ------------------------------------------------------------------------------
    def join(self, word: str, parts: list[Frag]) -> Frag:
        if not parts:
            return (self.d.true if word == "AND" else self.d.false), []
        if len(parts) == 1:
            return parts[0]
        return "(" + f" {word} ".join(sql for sql, _ in parts) + ")", [a for _, ps in parts for a in ps]

    def predicate(self, p: Predicate) -> Frag:
        if isinstance(p, Compare):
            return self.compare(p)
        if isinstance(p, In):
            return self.in_(p)
        if isinstance(p, StartsWith):
            return self.like(p.prop, like_escape(p.value) + "%")
        if isinstance(p, EndsWith):
            return self.like(p.prop, "%" + like_escape(p.value))
        if isinstance(p, AnyEq):
            return self.any_(p.prop, like_escape(p.value) + "%" if p.prefix else None, p.value)
        if isinstance(p, AnyEndsWith):
            return self.any_(p.prop, "%" + like_escape(p.value), p.value)
        if isinstance(p, And):
            return self.join("AND", [self.predicate(i) for i in p.items])
        if isinstance(p, Or):
            return self.join("OR", [self.predicate(i) for i in p.items])
        if isinstance(p, Not):
            sql, params = self.predicate(p.item)
            # SQL NOT(NULL) is NULL; COALESCE makes a clause on a missing value plain false.
            return f"NOT COALESCE(({sql}), {self.d.false})", params
        raise TypeError(f"not a predicate: {p!r}")

    def search(self, s: Search | SearchTerm) -> Frag:
        if isinstance(s, SearchTerm):
            expr, params = self.scalar(s.prop)
            token = s.token  # not lower-cased here: LIKE folds case like the SQL side does
            for sep in _WORD_SEPARATORS:
                token = token.replace(sep, " ")
            pattern = "% " + like_escape(token) + "%"
            return self.d.ci_like(self.d.words(expr), self.d.ph), [*params, pattern]
        return self.join(s.op, [self.search(t) for t in s.terms])


def _no_nul(compiled: tuple[str, list[object]]) -> tuple[str, list[object]]:
    """A value holding a NUL character is refused (:class:`InvalidInput`) on every backend: no stored
    string holds one (``object_columns``), and SQLite's ``LIKE`` would end its pattern there."""
    if any(isinstance(v, str) and "\x00" in v for v in compiled[1]):
        raise InvalidInput("a query value holds a NUL character")
    return compiled


def compile_predicate(p: Predicate, dialect: str = "sqlite") -> tuple[str, list[object]]:
    """``(sql, params)`` for a ``$filter`` predicate over table alias ``o``."""
    return _no_nul(_Compiler(dialect).predicate(p))


def compile_search(s: Search, dialect: str = "sqlite") -> tuple[str, list[object]]:
    """``(sql, params)`` for a ``$search`` expression over table alias ``o`` (https://learn.microsoft.com/en-us/graph/search-query-parameter)."""
    return _no_nul(_Compiler(dialect).search(s))
