"""The ASGI application: Graph's ``/v1.0`` and ``/beta`` trees on Starlette.

One catch-all route per tree hands the path to :class:`graphdir.web.router.Router`;
each request then goes wire → auth → directory → store, and every error is
rendered by :func:`graphdir.web.responses.error_response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route as StarletteRoute
from starlette.types import ExceptionHandler, Receive, Scope, Send

from graphdir import bootstrap, errors, stalls
from graphdir.auth.authority import Authority
from graphdir.auth.external import load_external_issuers
from graphdir.auth.permissions import Perms, actor_from_claims, authorize
from graphdir.auth.tokens import MSG_ISSUER, KeyRing, Validator
from graphdir.directory.rights import Actor
from graphdir.directory.service import Directory
from graphdir.settings import Settings
from graphdir.store.base import Conflict, Gone, InvalidInput, InvalidPosition, StoreError, Unavailable
from graphdir.web import responses
from graphdir.web.authority import authority_routes
from graphdir.web.context import Ctx
from graphdir.web.deadlines import BodyDeadlines, BodyTimeout
from graphdir.web.handlers_objects import me_needs_delegated
from graphdir.web.request import ClientDisconnect, GraphRequest
from graphdir.web.responses import GraphResponse
from graphdir.web.router import KeySegment, Router
from graphdir.web.routes import ADMIN_ROUTES, ROUTES

log = logging.getLogger("graphdir")
_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"]
_VERSIONS = frozenset({"v1.0", "beta"})
#: the caller of an anonymous route: no tenant, no permissions
_NOBODY = Actor(tenant_id="")


def _segments(path: str) -> list[str]:
    """Split a path; ``users('$x@y.com')`` addresses a key in parentheses (user-get.md)."""
    if "(" not in path:
        return [seg for seg in path.split("/") if seg]
    out: list[str] = []
    for seg in path.split("/"):
        if not seg:
            continue
        if seg.endswith("')") and "('" in seg:
            name, _, key = seg.partition("('")
            out += [name, KeySegment(key[:-2].replace("''", "'"))]
        elif seg.endswith("()") and len(seg) > 2:
            out.append(seg[:-2])  # delta() as the SDK sends it (docs/behaviour.md#delta-with-parentheses)
        else:
            out.append(seg)
    return out


class _UncachedTenant(Exception):
    """The validator met a tenant id this process has not looked up yet (see ``GraphApp.known_tenant``)."""

    def __init__(self, tid: str) -> None:
        super().__init__(tid)
        self.tid = tid


class GraphApp:
    """The service's parts, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = bootstrap.open_store(settings)
        self.directory = Directory(self.store, settings)
        self.router = Router(ROUTES)
        self.admin_router = Router(ADMIN_ROUTES)
        self.deadlines = BodyDeadlines(settings.body_read_timeout)
        self.ring: KeyRing | None = None
        self.validator: Validator | None = None
        self._authority: Authority | None = None
        self.tenant: dict[str, Any] = {}
        self.app_id = ""
        self._tenants: set[str] = set()
        #: token suffix → (Authorization header, actor, valid until): see :meth:`_actor`
        self._actors: dict[str, tuple[str, Actor, float]] = {}
        self._actors_generation = 0  # the key ring's generation the cached actors were validated under

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.store.open()
        self.tenant = bootstrap.default_tenant(self.store, self.settings)
        self._tenants = {t["id"] for t in self.store.sync(self.store.list_tenants())}
        self.app_id = bootstrap.default_app_id(self.store)
        self.ring = KeyRing(self.store, max_token_lifetime=max(self.settings.token_lifetime, 86400))
        self.ring.watch()
        external = load_external_issuers(self.settings.external_issuers_file)
        self.validator = Validator(self.ring, self.known_tenant, self.settings.clock_skew, external=external,
                                   own_names=(self.settings.public_base_url,))  # fmt: skip
        self._authority = Authority(self.store, self.ring, self.settings)

    @property
    def authority(self) -> Authority:
        """The token authority (web/authority.py's endpoints); exists once :meth:`start` ran."""
        assert self._authority is not None, "GraphApp.start() has not run"
        return self._authority

    def stop(self) -> None:
        self.store.close()

    def known_tenant(self, tid: str) -> bool:
        """The validator's tenant check, from memory (it runs on the event loop, where a database server
        may not be read synchronously): a tenant not seen yet is looked up by :meth:`handle`, awaited."""
        if tid in self._tenants:
            return True
        raise _UncachedTenant(tid)

    async def _learn_tenant(self, tid: str, request: GraphRequest) -> Actor:
        """A token of a tenant this process has not seen yet (created by another process since start-up):
        one awaited read, then the tenant is known (tenants are never deleted) and the token validated."""
        if await self.store.get_tenant(tid) is None:
            raise errors.unauthenticated(MSG_ISSUER)
        self._tenants.add(tid)
        return self._actor(request)

    # -- helpers for handlers -----------------------------------------------------------------
    def public_base(self, request: Request | GraphRequest) -> str:
        if self.settings.public_base_url:
            return self.settings.public_base_url.rstrip("/")
        return self.origin(request)

    async def read_body(self, request: Request | GraphRequest) -> bytes:
        """The request body, refusing more than ``max_body_bytes`` with a Graph-shaped 413."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):  # int() would take " 5", "５", "1_0"
                raise errors.bad_request("Invalid Content-Length header.")
            if int(declared) > limit:
                raise errors.payload_too_large(limit)
        try:
            return await self.deadlines.read(request.stream(), limit, lambda: errors.payload_too_large(limit))
        except BodyTimeout:
            raise errors.request_timeout() from None

    def origin(self, request: Request | GraphRequest) -> str:
        """``scheme://host[:port]`` the request was sent to (its ``Host`` header), whatever ``public_base_url`` says."""
        host = request.headers.get("host") or f"{self.settings.host}:{self.settings.port}"
        return f"{request.scope.get('scheme', 'http')}://{host}"

    def _actor(self, request: GraphRequest) -> Actor:
        """The caller, from the bearer token: validated once, then served from a cache until it expires
        or until a signing key is removed (the key ring's generation moves: one memory read per request).

        The cache is keyed by the token's last 32 characters (part of its signature: cheap to hash,
        where the whole token is a kilobyte) and a hit must equal the whole token.
        """
        headers = request.headers
        assert self.validator is not None
        if self.validator.current() != self._actors_generation:
            self._actors.clear()
            self._actors_generation = self.validator.current()
        auth = headers.get("authorization", "")
        hit = self._actors.get(auth[-32:])
        if hit is not None and hit[0] == auth and hit[2] > time.time():
            return hit[1]
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        claims = self.validator.validate(token.strip(), self.origin(request))  # raises 401 when expired, forged, unknown…
        actor = actor_from_claims(claims)
        if len(self._actors) >= 10_000:
            self._actors.clear()
        # valid until the token's expiry plus the tolerated skew, as the validator decides
        self._actors[auth[-32:]] = (auth, actor, float(claims["exp"]) + self.validator.skew)
        return actor

    # -- the endpoint ----------------------------------------------------------------------------
    async def handle(self, request: GraphRequest, version: str, router: Router, path: str) -> GraphResponse:
        rid, cid = responses.request_ids(request.headers)
        try:
            match = router.match(request.method, _segments(path))
            perms = match.route.perms
            if isinstance(perms, Perms):
                try:
                    actor = self._actor(request)
                except _UncachedTenant as miss:
                    actor = await self._learn_tenant(miss.tid, request)
                if match.route.delegated_only and not actor.delegated:
                    raise me_needs_delegated()  # before the permission check: roles cannot help
                authorize(actor, perms)
            else:  # the table's ANONYMOUS marker ($metadata): no token read, none needed
                actor = _NOBODY
            ctx = Ctx(request, version, match.args, actor, self, rid, cid)
            response: GraphResponse = await match.route.handler(ctx)
            return response
        except errors.GraphError as exc:
            return responses.error_response(exc, rid, cid)
        except ClientDisconnect:  # nobody reads the answer; what matters is that nothing was written
            return responses.error_response(errors.bad_request("The request body was not received in full."), rid, cid)
        except StoreError as exc:
            return responses.error_response(store_error(exc, request.method, request.path), rid, cid)
        except Exception:  # noqa: BLE001 - never a bare 500 page
            log.exception("unhandled error on %s %s", request.method, request.path)
            return responses.error_response(errors.internal_error(), rid, cid)


def store_error(exc: StoreError, method: str, path: str) -> errors.GraphError:
    """The Graph error for a storage failure, by cause: the client's (400), an unavailable store (503 +
    ``Retry-After``, the only one worth a retry) or a bug (500, logged; never a 503, which the SDKs retry)."""
    if isinstance(exc, Conflict):
        return errors.bad_request(f"Another object with the same value for property {exc.what} already exists.")
    if isinstance(exc, Gone):  # what the write referred to was deleted meanwhile (the store cannot say which)
        return errors.GraphError(404, "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present.")
    if isinstance(exc, InvalidPosition):  # a forged $skiptoken the options did not catch
        return errors.invalid_skip_token()
    if isinstance(exc, InvalidInput):
        return errors.value_too_large()
    if isinstance(exc, Unavailable):
        log.warning("store unavailable: %s", exc)
        return errors.service_unavailable()
    log.error("storage failure on %s %s", method, path, exc_info=exc)
    return errors.internal_error()


class FrontDoor:
    """The ASGI entry: Graph's ``/v1.0`` and ``/beta`` trees go straight to :meth:`GraphApp.handle`
    (the hot path: no framework routing or middleware); everything else — the token authority,
    the admin API, the lifespan — goes to the Starlette app behind it."""

    def __init__(self, graph: GraphApp, rest: Starlette) -> None:
        self.graph = graph
        self.rest = rest
        self.state = rest.state
        self.max_uri = graph.settings.max_uri_bytes
        self.max_header = graph.settings.max_header_bytes

    @staticmethod
    async def _refuse(err: errors.GraphError, scope: Scope, receive: Receive, send: Send) -> None:
        cid = next((value for key, value in scope["headers"] if key == b"client-request-id"), b"")
        # echoed as on every response, unless it is what made the headers too large
        rid, cid = responses.request_ids({"client-request-id": cid.decode("latin-1")} if len(cid) <= 128 else {})
        await responses.error_response(err, rid, cid)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            # limits below granian's, whose own answers have empty bodies (docs/behaviour.md#http-layer-errors)
            if len(scope.get("raw_path") or path) + len(scope["query_string"]) > self.max_uri:
                await self._refuse(errors.uri_too_long(self.max_uri), scope, receive, send)
                return
            if sum([len(k) + len(v) for k, v in scope["headers"]]) > self.max_header:
                await self._refuse(errors.headers_too_large(self.max_header), scope, receive, send)
                return
            version, slash, rest = path[1:].partition("/")
            if slash and version in _VERSIONS:
                response = await self.graph.handle(GraphRequest(scope, receive), version, self.graph.router, rest)
                await response(scope, receive, send)
                return
        await self.rest(scope, receive, send)


def build_app(settings: Settings, after_start: Callable[[], None] | None = None) -> FrontDoor:
    """The ASGI app; ``after_start`` runs on the event loop once start-up is done (the server's
    garbage-collector tuning, :func:`graphdir.asgi.tune_gc`, which must see what start-up allocated)."""
    if settings.stall_log:
        stalls.enable(settings.stall_log)
    graph = GraphApp(settings)

    async def admin_endpoint(request: Request) -> GraphResponse:
        return await graph.handle(GraphRequest(request.scope, request.receive), "v1.0", graph.admin_router, request.path_params["path"])

    async def fallback(request: Request) -> GraphResponse:
        rid, cid = responses.request_ids(request.headers)
        segs = _segments(request.url.path)
        return responses.error_response(errors.segment_not_found(segs[0] if segs else ""), rid, cid)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # off the loop: start-up writes synchronously (first tenant, keys), which a loop's thread may not
        await run_in_threadpool(graph.start)
        await graph.store.open_reads()  # this loop's read pool (a database server)
        if after_start is not None:
            after_start()
        graph.deadlines.start()
        watcher = asyncio.create_task(stalls.watch_loop()) if stalls.RECORDER is not None else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            await graph.deadlines.stop()
            await graph.store.close_reads()
            await run_in_threadpool(graph.stop)
            if settings.stall_log:
                stalls.disable()

    async def store_failure(request: Request, exc: Exception) -> GraphResponse:
        """The token authority's storage failures, answered as the Graph routes answer them."""
        assert isinstance(exc, StoreError)
        rid, cid = responses.request_ids(request.headers)
        return responses.error_response(store_error(exc, request.method, request.url.path), rid, cid)

    app = Starlette(
        exception_handlers={StoreError: cast(ExceptionHandler, store_failure)},  # GraphResponse is an ASGI app
        routes=[
            *authority_routes(graph),  # Entra-shaped token authority (issue 3): before Graph's catch-all
            StarletteRoute("/graphdir/admin/{path:path}", admin_endpoint, methods=_METHODS),
            StarletteRoute("/{path:path}", fallback, methods=_METHODS),
        ],
        lifespan=lifespan,
    )
    app.state.graph = graph
    return FrontDoor(graph, app)
