"""The service's CSDL document (``GET /{version}/$metadata``): OData v4 EDMX XML, per version.

Every ``@odata.context`` graphdir returns points at ``{base}/{version}/$metadata#…``; this is the
document behind it (https://learn.microsoft.com/en-us/graph/traverse-the-graph), describing what
graphdir serves — not all of Graph:

* entity types ``entity`` (key ``id``) → ``directoryObject`` (``deletedDateTime``) → ``user``,
  ``group``, ``device``, ``servicePrincipal``, ``orgContact`` with the properties of
  :data:`graphdir.directory.schema.SCHEMAS` that the version has (``Prop.versions``), and the
  complex types those properties use (:data:`~graphdir.directory.schema.COMPLEX_TYPES`);
* the navigation properties graphdir has routes for (:data:`~graphdir.directory.schema.NAVIGATION`:
  ``members``, ``owners``, ``memberOf``, ``transitiveMembers``, ``transitiveMemberOf``), collections of
  ``directoryObject``;
* the entity container ``GraphService``: one entity set per type (the sets ``@odata.context``
  names), ``directoryObjects`` and the singleton ``me``, each annotated with what it expands
  (``Org.OData.Capabilities.V1.ExpandRestrictions``): ``groups`` their ``members`` and ``owners``,
  ``users`` and ``me`` their ``memberOf``, one level deep (``MaxLevels`` 1); every other set nothing.

It is generated from the schema module, so it cannot drift from what the JSON carries; rendered
once per version and cached.
"""

from __future__ import annotations

import functools
from xml.sax.saxutils import escape, quoteattr

from graphdir.directory.schema import COMPLEX_TYPES, ENTITY_SETS, NAVIGATION, SCHEMAS, Prop
from graphdir.odata.options import EXPANDABLE

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
NAMESPACE, ALIAS = "microsoft.graph", "graph"
CAPABILITIES = "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml"
CONTAINER = "GraphService"

#: The OData type of each JSON kind of :class:`~graphdir.directory.schema.Prop` (complex kinds aside).
EDM_TYPES = {
    "string": "Edm.String",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "int": "Edm.Int32",
    "strings": "Collection(Edm.String)",
}
_INHERITED = ("id", "deletedDateTime")  # declared on entity / directoryObject


def edm_type(prop: Prop) -> str:
    """``Edm.String``, ``Collection(Edm.String)``, ``graph.passwordProfile``, ``Collection(graph.objectIdentity)``…"""
    if prop.kind in ("object", "objects"):
        if prop.complex not in COMPLEX_TYPES:
            raise ValueError(f"property {prop.name} has no complex type")
        name = f"{ALIAS}.{prop.complex}"
        return f"Collection({name})" if prop.kind == "objects" else name
    return EDM_TYPES[prop.kind]


class _Xml:
    """A few lines of indented XML: enough for a CSDL document, attributes always quoted."""

    def __init__(self) -> None:
        self.lines = ["<?xml version='1.0' encoding='utf-8'?>"]
        self.depth = 0

    def _tag(self, tag: str, attrs: dict[str, str]) -> str:
        return tag + "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())

    def leaf(self, tag: str, **attrs: str) -> None:
        self.lines.append("  " * self.depth + f"<{self._tag(tag, attrs)}/>")

    def open(self, tag: str, **attrs: str) -> None:
        self.lines.append("  " * self.depth + f"<{self._tag(tag, attrs)}>")
        self.depth += 1

    def text(self, tag: str, text: str) -> None:
        self.lines.append("  " * self.depth + f"<{tag}>{escape(text)}</{tag}>")

    def close(self, tag: str) -> None:
        self.depth -= 1
        self.lines.append("  " * self.depth + f"</{tag}>")


def _property(x: _Xml, prop: Prop) -> None:
    type_ = edm_type(prop)
    if type_.startswith("Collection("):
        x.leaf("Property", Name=prop.name, Type=type_, Nullable="false")  # a collection is empty, never null
    else:
        x.leaf("Property", Name=prop.name, Type=type_)


def _schema(x: _Xml, version: str) -> None:
    x.open("Schema", xmlns=EDM_NS, Namespace=NAMESPACE, Alias=ALIAS)
    x.open("EntityType", Name="entity", Abstract="true")
    x.open("Key")
    x.leaf("PropertyRef", Name="id")
    x.close("Key")
    x.leaf("Property", Name="id", Type="Edm.String", Nullable="false")
    x.close("EntityType")
    x.open("EntityType", Name="directoryObject", BaseType=f"{ALIAS}.entity")
    x.leaf("Property", Name="deletedDateTime", Type="Edm.DateTimeOffset")
    x.close("EntityType")
    for type_, props in SCHEMAS.items():
        x.open("EntityType", Name=type_, BaseType=f"{ALIAS}.directoryObject")
        for prop in props.values():
            if prop.name not in _INHERITED and version in prop.versions:
                _property(x, prop)
        for nav in NAVIGATION.get(type_, ()):
            x.leaf("NavigationProperty", Name=nav, Type=f"Collection({ALIAS}.directoryObject)")
        x.close("EntityType")
    for name, fields in COMPLEX_TYPES.items():
        x.open("ComplexType", Name=name)
        for prop in fields.values():
            _property(x, prop)
        x.close("ComplexType")
    sources = [("EntitySet", "directoryObjects", "directoryObject")]
    sources += [("EntitySet", ENTITY_SETS[t], t) for t in SCHEMAS]
    sources.append(("Singleton", "me", "user"))
    x.open("EntityContainer", Name=CONTAINER)
    for kind, name, type_ in sources:
        type_attr = {"EntityType" if kind == "EntitySet" else "Type": f"{ALIAS}.{type_}"}
        bindings = NAVIGATION.get(type_, ())
        if not bindings:
            x.leaf(kind, Name=name, **type_attr)
            continue
        x.open(kind, Name=name, **type_attr)
        for nav in bindings:
            x.leaf("NavigationPropertyBinding", Path=nav, Target="directoryObjects")
        x.close(kind)
    x.close("EntityContainer")
    for _, name, type_ in sources:
        x.open("Annotations", Target=f"{NAMESPACE}.{CONTAINER}/{name}")
        x.open("Annotation", Term="Capabilities.ExpandRestrictions")
        x.open("Record")
        _expand_restrictions(x, type_)
        x.close("Record")
        x.close("Annotation")
        x.close("Annotations")
    x.close("Schema")


def _expand_restrictions(x: _Xml, type_: str) -> None:
    """What a set of ``type_`` expands (docs/behaviour.md#expand): the navigation properties of
    :data:`~graphdir.odata.options.EXPANDABLE`, one level deep; a set with none is not expandable."""
    expandable = EXPANDABLE.get(type_, ())
    if not expandable:
        x.leaf("PropertyValue", Property="Expandable", Bool="false")
        return
    x.leaf("PropertyValue", Property="Expandable", Bool="true")
    x.leaf("PropertyValue", Property="MaxLevels", Int="1")
    others = [nav for nav in NAVIGATION.get(type_, ()) if nav not in expandable]
    if others:
        x.open("PropertyValue", Property="NonExpandableProperties")
        x.open("Collection")
        for nav in others:
            x.text("NavigationPropertyPath", nav)
        x.close("Collection")
        x.close("PropertyValue")


@functools.cache
def document(version: str) -> bytes:
    """The EDMX document for ``version`` (``v1.0`` or ``beta``), UTF-8 XML bytes, built once."""
    x = _Xml()
    x.open("edmx:Edmx", **{"xmlns:edmx": EDMX_NS, "Version": "4.0"})
    x.open("edmx:Reference", Uri=CAPABILITIES)
    x.leaf("edmx:Include", Namespace="Org.OData.Capabilities.V1", Alias="Capabilities")
    x.close("edmx:Reference")
    x.open("edmx:DataServices")
    _schema(x, version)
    x.close("edmx:DataServices")
    x.close("edmx:Edmx")
    return ("\n".join(x.lines) + "\n").encode()
