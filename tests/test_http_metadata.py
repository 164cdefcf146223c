"""``GET /{version}/$metadata``: the CSDL document every ``@odata.context`` points at (issue 9).

Parsed with the standard library: every property the JSON of a GET returns is declared on its
entity type (or a base type) with a matching Edm type, per version; the entity sets and the
singleton the contexts name exist; the relationships graphdir serves are navigation properties.
The document needs no token, as Graph's does, and is declared anonymous in the route table.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from graphdir.directory.schema import SCHEMAS, TYPE_NAMES
from graphdir.odata import metadata
from graphdir.web.router import ANONYMOUS
from graphdir.web.routes import ROUTES
from http_helpers import DOMAIN, Api, assert_error, assert_odata_json, ref

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class Csdl:
    """The parts of a CSDL document these tests read: types with their (inherited) properties."""

    def __init__(self, raw: bytes) -> None:
        root = ET.fromstring(raw)
        assert root.tag == f"{EDMX}Edmx" and root.get("Version") == "4.0"
        schemas = root.findall(f"{EDMX}DataServices/{EDM}Schema")
        assert len(schemas) == 1
        self.schema = schemas[0]
        assert (self.schema.get("Namespace"), self.schema.get("Alias")) == ("microsoft.graph", "graph")
        self.entity_types = {e.get("Name"): e for e in self.schema.findall(f"{EDM}EntityType")}
        self.complex_types = {e.get("Name"): e for e in self.schema.findall(f"{EDM}ComplexType")}
        self.container = self.schema.find(f"{EDM}EntityContainer")
        assert self.container is not None and self.container.get("Name") == "GraphService"

    @staticmethod
    def local(type_name: str) -> str:
        for prefix in ("microsoft.graph.", "graph."):
            if type_name.startswith(prefix):
                return type_name[len(prefix) :]
        raise AssertionError(f"not a graph type: {type_name}")

    def properties(self, type_name: str, tag: str = "Property") -> dict[str, str]:
        """Name → Type of the entity type's properties, its base types' included."""
        out: dict[str, str] = {}
        el: ET.Element | None = self.entity_types[type_name]
        while el is not None:
            for prop in el.findall(f"{EDM}{tag}"):
                assert prop.get("Name") not in out, f"{prop.get('Name')} declared twice on {type_name}'s chain"
                out[str(prop.get("Name"))] = str(prop.get("Type"))
            base = el.get("BaseType")
            el = self.entity_types[self.local(base)] if base else None
        return out

    def complex_properties(self, name: str) -> dict[str, str]:
        return {str(p.get("Name")): str(p.get("Type")) for p in self.complex_types[name].findall(f"{EDM}Property")}

    def sets(self) -> dict[str, str]:
        assert self.container is not None
        out = {str(s.get("Name")): self.local(str(s.get("EntityType"))) for s in self.container.findall(f"{EDM}EntitySet")}
        out.update({str(s.get("Name")): self.local(str(s.get("Type"))) for s in self.container.findall(f"{EDM}Singleton")})
        return out

    def check_value(self, type_: str, value: Any, where: str) -> None:
        """``value`` (JSON) fits the Edm type ``type_`` (nulls only outside collections)."""
        if type_.startswith("Collection("):
            assert isinstance(value, list), (where, value)
            for item in value:
                assert item is not None, where
                self.check_value(type_[len("Collection(") : -1], item, where)
            return
        if value is None:
            return
        if type_ == "Edm.String":
            assert isinstance(value, str), (where, value)
        elif type_ == "Edm.Boolean":
            assert isinstance(value, bool), (where, value)
        elif type_ == "Edm.DateTimeOffset":
            assert isinstance(value, str) and DATETIME.match(value), (where, value)
        elif type_ == "Edm.Int32":
            assert isinstance(value, int) and not isinstance(value, bool), (where, value)
        else:
            fields = self.complex_properties(self.local(type_))
            assert isinstance(value, dict), (where, value)
            for key, item in value.items():
                assert key in fields, f"{where}: {key} is not declared on {type_}"
                self.check_value(fields[key], item, f"{where}/{key}")

    def check_entity(self, type_name: str, body: dict[str, Any], where: str) -> int:
        """Every property of ``body`` is declared on ``type_name`` with a matching type; returns how many were checked."""
        declared = self.properties(type_name)
        checked = 0
        for key, value in body.items():
            if key.startswith("@odata."):
                continue
            assert key in declared, f"{where}: '{key}' is not declared on {type_name}"
            self.check_value(declared[key], value, f"{where}.{key}")
            checked += 1
        return checked


async def get_csdl(api: Api, version: str) -> Csdl:
    resp = await api.get(f"/{version}/$metadata", auth=False)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/xml"
    assert resp.headers["OData-Version"] == "4.0"
    return Csdl(resp.content)


def _selectable(type_: str, version: str) -> str:
    return ",".join(p.name for p in SCHEMAS[type_].values() if not p.write_only and version in p.versions)


@pytest.mark.parametrize("version", VERSIONS)
async def test_metadata_is_anonymous_xml(api: Api, version: str) -> None:
    """No token needed (Graph's own $metadata is public); a token, even a broken one, is not read."""
    csdl = await get_csdl(api, version)
    assert {"entity", "directoryObject", "user", "group", "device", "servicePrincipal", "orgContact"} <= set(csdl.entity_types)
    for headers in ({"Authorization": "Bearer not-a-jwt"}, {"Authorization": f"Bearer {api.default_token}"}):
        resp = await api.get(f"/{version}/$metadata", auth=False, headers=headers)
        assert resp.status_code == 200 and resp.content == metadata.document(version)
    # the route table says so explicitly; every other route declares permissions
    anonymous = [r.name for r in ROUTES if r.perms is ANONYMOUS]
    assert anonymous == ["GET /$metadata"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_property_a_get_returns_is_declared(api: Api, version: str) -> None:
    csdl = await get_csdl(api, version)
    user = await api.create_user(jobTitle="Tester", businessPhones=["+1 555"], identities=[
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "x@example.com"}])  # fmt: skip
    unified = await api.create_group(kind="unified", version=version)
    dynamic = await api.create_group(kind="dynamic", version=version)
    security = await api.create_group(version=version, **{"members@odata.bind": [ref(user["id"])]})
    seeded = {t: await api.seed(t) for t in ("device", "servicePrincipal", "orgContact")}
    checked = 0
    # default projections and every selectable property, single entities and listings
    for type_, path, key in [("user", "users", user["id"]), ("group", "groups", unified["id"]), ("group", "groups", dynamic["id"])]:
        for params in ({}, {"$select": _selectable(type_, version)}):
            body = assert_odata_json(await api.get(f"/{version}/{path}/{key}", params=params))
            checked += csdl.check_entity(type_, body, f"{version} GET /{path}/{key} {params}")
            listing = assert_odata_json(await api.get(f"/{version}/{path}", params=params))
            for item in listing["value"]:
                checked += csdl.check_entity(type_, item, f"{version} GET /{path} {params}")
    # polymorphic listings and directoryObjects carry @odata.type: check each item against its own type
    for obj in seeded.values():
        assert (await api.add_member(security["id"], obj["id"], version=version)).status_code == 204
    members = assert_odata_json(await api.get(f"/{version}/groups/{security['id']}/members"))["value"]
    assert {m["@odata.type"] for m in members} == {"#microsoft.graph.user", *(f"#{TYPE_NAMES[t]}" for t in seeded)}
    for item in members + [assert_odata_json(await api.get(f"/{version}/directoryObjects/{o['id']}")) for o in seeded.values()]:
        checked += csdl.check_entity(csdl.local(item["@odata.type"][1:]), item, f"{version} member {item['id']}")
    for t, obj in seeded.items():
        body = assert_odata_json(await api.get(f"/{version}/directoryObjects/{obj['id']}", params={"$select": _selectable(t, version)}))
        checked += csdl.check_entity(t, body, f"{version} directoryObjects {t}")
    assert checked > 300  # the walk really looked at properties


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_declared_property_is_served(api: Api, version: str) -> None:
    """The other direction: what the document declares for a type is what graphdir's schema has on
    that version (so a client generated from it never asks for a property graphdir refuses)."""
    csdl = await get_csdl(api, version)
    for type_, schema in SCHEMAS.items():
        declared = csdl.properties(type_)
        expected = {p.name: metadata.edm_type(p) for p in schema.values() if version in p.versions}
        expected.update({"id": "Edm.String", "deletedDateTime": "Edm.DateTimeOffset"})
        assert declared == expected, type_


async def test_versions_differ_where_the_schema_says(api: Api) -> None:
    """creationOptions is a beta property of group (resources/group on beta; not in v1.0)."""
    v1, beta = await get_csdl(api, "v1.0"), await get_csdl(api, "beta")
    assert "creationOptions" not in v1.properties("group")
    assert beta.properties("group")["creationOptions"] == "Collection(Edm.String)"
    group = await api.create_group()
    resp = await api.get(f"/v1.0/groups/{group['id']}", params={"$select": "creationOptions"})
    assert_error(resp, 400, "BadRequest", "Could not find a property named 'creationOptions' on type 'microsoft.graph.group'.")
    assert "creationOptions" in assert_odata_json(await api.get(f"/beta/groups/{group['id']}", params={"$select": "creationOptions"}))
    resp = await api.post("/v1.0/groups", json={"displayName": "c", "mailNickname": "c", "mailEnabled": False, "securityEnabled": True, "creationOptions": []})
    assert_error(resp, 400, "BadRequest", "The property 'creationOptions' does not exist on type 'microsoft.graph.group'. "
                 "Make sure to only use property names that are defined by the type or mark the type as open type.")  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
async def test_contexts_name_sets_of_the_document(api: Api, version: str) -> None:
    """Each ``@odata.context`` fragment names an entity set or singleton the document declares, of the right type."""
    csdl = await get_csdl(api, version)
    sets = csdl.sets()
    assert sets == {"directoryObjects": "directoryObject", "users": "user", "groups": "group", "devices": "device",
                    "servicePrincipals": "servicePrincipal", "contacts": "orgContact", "me": "user"}  # fmt: skip
    user = await api.create_user()
    group = await api.create_group(version=version, **{"members@odata.bind": [ref(user["id"])]})
    paths = [
        f"/{version}/users", f"/{version}/users/{user['id']}", f"/{version}/groups", f"/{version}/groups/{group['id']}",
        f"/{version}/groups/{group['id']}/members", f"/{version}/groups/{group['id']}/members/microsoft.graph.user",
        f"/{version}/users/{user['id']}/memberOf", f"/{version}/directoryObjects/{user['id']}",
        f"/{version}/users/{user['id']}?$select=displayName",
    ]  # fmt: skip
    for path in paths:
        context = assert_odata_json(await api.get(path))["@odata.context"]
        assert context.startswith(f"http://testserver/{version}/$metadata#"), context
        name = context.split("#", 1)[1].split("/")[0].split("(")[0]
        assert name in sets, (path, context)


@pytest.mark.parametrize("version", VERSIONS)
async def test_relationships_are_navigation_properties(api: Api, version: str) -> None:
    csdl = await get_csdl(api, version)
    collection = "Collection(graph.directoryObject)"
    assert csdl.properties("group", "NavigationProperty") == {
        "members": collection, "owners": collection, "memberOf": collection, "transitiveMembers": collection, "transitiveMemberOf": collection,
    }  # fmt: skip
    assert csdl.properties("user", "NavigationProperty") == {"memberOf": collection, "transitiveMemberOf": collection}
    assert csdl.container is not None
    me = csdl.container.find(f"{EDM}Singleton[@Name='me']")
    assert me is not None and me.get("Type") == "graph.user"
    assert [b.get("Path") for b in me.findall(f"{EDM}NavigationPropertyBinding")] == ["memberOf", "transitiveMemberOf"]
    # what each set expands (tests/test_http_expand.py): groups their members and owners, users and me
    # their memberOf, one level; every other set nothing (the ExpandNotSupported answers cite "the entity schema")
    restrictions: dict[str, tuple[str | None, str | None, list[str]]] = {}
    for a in csdl.schema.findall(f"{EDM}Annotations"):
        record = a.find(f"{EDM}Annotation[@Term='Capabilities.ExpandRestrictions']/{EDM}Record")
        assert record is not None
        expandable = record.find(f"{EDM}PropertyValue[@Property='Expandable']")
        levels = record.find(f"{EDM}PropertyValue[@Property='MaxLevels']")
        paths = [str(p.text) for p in record.findall(f"{EDM}PropertyValue[@Property='NonExpandableProperties']/{EDM}Collection/{EDM}NavigationPropertyPath")]
        restrictions[str(a.get("Target")).rsplit("/", 1)[1]] = (
            expandable.get("Bool") if expandable is not None else None, levels.get("Int") if levels is not None else None, paths
        )
    served = {
        "groups": ("true", "1", ["memberOf", "transitiveMembers", "transitiveMemberOf"]),
        "users": ("true", "1", ["transitiveMemberOf"]),
        "me": ("true", "1", ["transitiveMemberOf"]),
    }
    assert restrictions == {s: served.get(s, ("false", None, [])) for s in csdl.sets()}


def test_document_is_rendered_once_per_version() -> None:
    assert metadata.document("v1.0") is metadata.document("v1.0")
    assert metadata.document("beta") is metadata.document("beta")
    assert metadata.document("v1.0") != metadata.document("beta")


def test_a_property_without_its_complex_type_cannot_be_described() -> None:
    from graphdir.directory.schema import Prop

    with pytest.raises(ValueError, match="no complex type"):
        metadata.edm_type(Prop("x", "objects"))


def test_collection_names_are_collections_on_every_type() -> None:
    """Serialisation turns a missing collection into ``[]`` by name: a name must be a collection on
    every type that has it (or on none)."""
    kinds: dict[str, set[bool]] = {}
    for schema in SCHEMAS.values():
        for prop in schema.values():
            kinds.setdefault(prop.name, set()).add(prop.kind in ("strings", "objects"))
    assert all(len(k) == 1 for k in kinds.values()), {n: k for n, k in kinds.items() if len(k) > 1}
