"""Per-request context handed to handlers: parse the body and options, build framed responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import orjson

from graphdir import errors
from graphdir.directory.rights import Actor
from graphdir.odata import serialize
from graphdir.odata.options import Options, encode_skiptoken, parse_options
from graphdir.store.base import Page, StoredObject
from graphdir.web import responses
from graphdir.web.request import GraphRequest
from graphdir.web.responses import GraphResponse

#: Expanded related objects by the id of the object they belong to (``$expand``).
Related = Mapping[str, list[StoredObject]]

if TYPE_CHECKING:
    from graphdir.directory.service import Directory
    from graphdir.web.app import GraphApp


class Ctx:
    __slots__ = ("request", "version", "args", "actor", "app", "rid", "cid", "_base")

    def __init__(self, request: GraphRequest, version: str, args: dict[str, str], actor: Actor, app: GraphApp, rid: str, cid: str) -> None:
        self.request = request
        self.version = version
        self.args = args
        self.actor = actor
        self.app = app
        self.rid = rid
        self.cid = cid
        self._base: str | None = None

    @property
    def base(self) -> str:
        """``scheme://host[:port]`` for links, computed only by responses that carry links."""
        if self._base is None:
            self._base = self.app.public_base(self.request)
        return self._base

    @property
    def dir(self) -> Directory:
        return self.app.directory

    @property
    def rendering(self) -> str:
        """The rendering key of this version's default projection (``ListQuery.rendered``)."""
        return serialize.RENDERING[self.version]

    @property
    def eventual(self) -> bool:
        return self.request.headers.get("consistencylevel", "").lower() == "eventual"

    async def body(self) -> dict[str, Any]:
        """The JSON object body; invalid JSON or a non-object → Graph's 400."""
        data = await self.body_json()
        if not isinstance(data, dict):
            raise errors.invalid_request_body()
        return data

    async def body_json(self) -> dict[str, Any] | list[Any]:
        """A JSON object or list body (``POST /graphdir/admin/seed``); anything else → Graph's 400."""
        raw = await self.app.read_body(self.request)
        try:
            data = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise errors.invalid_request_body() from None
        if not isinstance(data, dict | list):
            raise errors.invalid_request_body()
        return data

    def options(self, resource: str, relationship: bool = False, collection: bool = True, expandable: bool = False) -> Options:
        return parse_options(
            self.request.query_items,
            resource=resource,
            eventual=self.eventual,
            relationship=relationship,
            collection=collection,
            cap_top=self.app.settings.top_over_max == "cap",
            version=self.version,
            expandable=expandable,
        )

    # -- responses ----------------------------------------------------------------
    def no_content(self) -> GraphResponse:
        return responses.no_content(self.rid, self.cid)

    def text(self, text: str) -> GraphResponse:
        return responses.text_response(text, self.rid, self.cid)

    def xml(self, body: bytes) -> GraphResponse:
        """An XML document (the CSDL ``$metadata``), ``Content-Type: application/xml``."""
        return responses.GraphResponse(200, body, self.rid, self.cid, b"application/xml")

    def entity(
        self, obj: StoredObject, opts: Options | None, status: int = 200, entity_set: str | None = None, related: Related | None = None
    ) -> GraphResponse:
        """One object; with ``related`` (``$expand``), its expanded relationship last."""
        select = opts.select if opts else None
        expand = opts.expand if opts and related is not None else None
        es = entity_set or serialize.entity_set_for(obj.type)
        relation = expand.relation if expand is not None else None
        body: dict[str, Any] = {"@odata.context": serialize.context(self.base, self.version, es, select, single=True, expand=relation)}
        body.update(serialize.entity(obj, select, typed=es == "directoryObjects", version=self.version))
        if expand is not None and related is not None:
            body[expand.relation] = serialize.expanded(related.get(obj.id, []), expand.select, self.version)
        return responses.json_response(body, self.rid, self.cid, status)

    def collection_created(self, objs: list[StoredObject]) -> GraphResponse:
        """``201`` with ``{"value": [...]}``: objects created by one request, in request order."""
        body: dict[str, Any] = {"@odata.context": serialize.context(self.base, self.version, "directoryObjects", None)}
        body["value"] = [serialize.entity(o, None, typed=True, version=self.version) for o in objs]
        return responses.json_response(body, self.rid, self.cid, 201)

    def collection(self, page: Page, entity_set: str, opts: Options, typed: bool, related: Related | None = None) -> GraphResponse:
        """A page; with ``related`` (``$expand``, never with pre-rendered items), each item's expanded
        relationship last."""
        expand = opts.expand if related is not None else None
        context = serialize.context(self.base, self.version, entity_set, opts.select, expand=expand.relation if expand is not None else None)
        body: dict[str, Any] = {"@odata.context": context}
        if page.count is not None and opts.query.after is None:
            body["@odata.count"] = page.count
        if page.next_after is not None:
            body["@odata.nextLink"] = self.next_link(opts, encode_skiptoken(page.next_after, opts.query.order_by))
        if page.rendered is not None:
            # items stored pre-rendered: join their bytes instead of decoding and re-encoding each one
            items = [serialize.typed_bytes(t, b) for t, b in page.rendered] if typed else [b for _, b in page.rendered]
            raw = orjson.dumps(body)[:-1] + b',"value":[' + b",".join(items) + b"]}"
            return responses.GraphResponse(200, raw, self.rid, self.cid, responses.ODATA_JSON.encode())
        body["value"] = [serialize.entity(o, opts.select, typed, self.version) for o in page.items]
        if expand is not None and related is not None:
            for item, o in zip(body["value"], page.items, strict=True):
                item[expand.relation] = serialize.expanded(related.get(o.id, []), expand.select, self.version)
        return responses.json_response(body, self.rid, self.cid)

    def refs(self, page: Page, opts: Options) -> GraphResponse:
        body: dict[str, Any] = {"@odata.context": f"{self.base}/{self.version}/$metadata#Collection($ref)"}
        if page.next_after is not None:
            body["@odata.nextLink"] = self.next_link(opts, encode_skiptoken(page.next_after, opts.query.order_by))
        body["value"] = [{"@odata.id": f"{self.base}/{self.version}/directoryObjects/{o.id}"} for o in page.items]
        return responses.json_response(body, self.rid, self.cid)

    def next_link(self, opts: Options, token: str) -> str:
        """An absolute link on the request's own origin (or the public base URL), keeping every option (docs/behaviour.md#absolute-next-links)."""
        query = urlencode(opts.params + [("$skiptoken", token)], quote_via=quote, safe="$,'():@/")
        return f"{self.base}{quote(self.request.path, safe='/$().,:@')}?{query}"
