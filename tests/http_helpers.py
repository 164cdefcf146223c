"""Shared fixtures and helpers for the HTTP suite: the real app, in-process, through ``httpx.ASGITransport``.

Every test gets its own database in the state of a template built once per session (the
template already holds the default tenant, the default app id and the signing keys, so a test
does not pay for RSA key generation). ASGITransport does not run the lifespan, so the fixtures
call ``graph.start()`` / ``.stop()``.

The backend is ``GRAPHDIR_TEST_BACKEND``: ``sqlite`` (the default; each app gets a copy of the
template's file) or ``postgresql`` (each app gets a database of the run's PostgreSQL server,
``GRAPHDIR_TEST_PG_URL``, reset to the template's rows: :class:`pg_helpers.ResettableDatabases`).
A test that is SQLite's by nature is marked :func:`sqlite_only`; a known difference of the
PostgreSQL store is marked :func:`pg_difference` (an expected failure there, with its diagnosis).

Fixtures (reuse them from other test files):

* ``make_app(**setting_overrides)`` → a started Starlette app (stopped at teardown);
* ``app`` / ``graph`` / ``client`` → the default app, its :class:`GraphApp`, an ``httpx.AsyncClient``;
* ``token(roles=…)`` / ``token(user_id=…, scopes=…, wids=…)`` → bearer tokens from the app's key ring;
* ``api`` → :class:`Api`, a thin helper around the client (create users/groups, seed, add members…);
* ``make_api(**setting_overrides)`` → an :class:`Api` over an app built with other settings.

Assertion helpers: :func:`assert_error` (status, code, exact message and the whole
Graph error shape of docs/behaviour.md#error-body), :func:`assert_no_content`, :func:`assert_odata_json`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from graphdir.auth.tokens import mint
from graphdir.bootstrap import open_store
from graphdir.settings import load_settings
from graphdir.web.app import GraphApp, build_app
from pg_helpers import ResettableDatabases, create_database, drop_database

GRAPH = "https://graph.microsoft.com"
#: docs/behaviour.md#response-headers: the Content-Type of OData payloads.
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
BASE_URL = "http://testserver"  # the origin httpx sends in Host; nextLinks must use it
DOMAIN = "contoso.onmicrosoft.com"
PASSWORD = "xWwvJ]6NMw+bWH-d"
ADMIN_ROLE = "Graphdir.Admin"
#: The application token used when a test does not pass one: may do everything but role-assignable groups.
DEFAULT_ROLES = ("Directory.ReadWrite.All",)
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
)
MSG_NOT_FOUND = "Resource '{}' does not exist or one of its queried reference-property objects are not present."
MSG_FORBIDDEN = "Insufficient privileges to complete the operation."
MSG_ALREADY = "One or more added object references already exist for the following modified properties: '{}'."
MSG_MAIL_UPDATE = "Cannot Update a mail-enabled security groups and or distribution list."
MSG_MAIL_CREATE = "Cannot Create a mail-enabled security groups and or distribution list."
MSG_ONPREM = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration."
MSG_INVALID_ID = "Invalid object identifier '{}'."
MSG_CYCLE = "Adding this group as a member would create a circular membership."
MSG_LAST_OWNER = "The group must have at least one owner, hence this owner cannot be removed."
MSG_TOO_MANY_LINKS = "A resource cannot contain more than 20 link changes."
MSG_METHOD = "Specified HTTP method is not allowed for the request target."
MSG_COUNT = "$count is not currently supported."
MSG_SEARCH = "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"
MSG_ADVANCED = (
    "Operator '{}' is not supported because the required parameters might be missing. "
    "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
    "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
)
MSG_UNSUPPORTED_FILTER = "Unsupported or invalid query filter clause specified for property '{}' of resource '{}'."
MSG_BAD_JSON = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
MSG_REQUIRED = "Property {} value is required but is empty or missing."
EVENTUAL = {"ConsistencyLevel": "eventual"}


# -- assertions ---------------------------------------------------------------------------------
def assert_error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> dict[str, Any]:
    """Graph's error shape (docs/behaviour.md#error-body): exactly ``{"error": {code, message, innerError{date, request-id, client-request-id}}}``."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers["content-type"]
    body = resp.json()
    assert list(body) == ["error"], body
    err = body["error"]
    assert set(err) == {"code", "message", "innerError"}, err
    assert err["code"] == code, err
    if message is not None:
        assert err["message"] == message, err["message"]
    inner = err["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}, inner
    assert DATE_RE.match(inner["date"]), inner["date"]
    assert inner["request-id"] == resp.headers["request-id"]
    assert inner["client-request-id"] == resp.headers["client-request-id"]
    assert resp.headers["OData-Version"] == "4.0"
    return err


def assert_no_content(resp: httpx.Response) -> None:
    """``204 No Content`` with an empty body (docs/behaviour.md#response-bodies) and the standard headers."""
    assert resp.status_code == 204, (resp.status_code, resp.text)
    assert resp.content == b""
    assert GUID_RE.match(resp.headers["request-id"])


def assert_odata_json(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"] == ODATA_JSON
    assert resp.headers["OData-Version"] == "4.0"
    assert GUID_RE.match(resp.headers["request-id"])
    body: dict[str, Any] = resp.json()
    return body


def ctx(version: str, fragment: str) -> str:
    """An ``@odata.context`` value on the test origin."""
    return f"{BASE_URL}/{version}/$metadata#{fragment}"


def ref(object_id: str, entity_set: str = "directoryObjects", version: str = "v1.0", host: str = GRAPH) -> str:
    """An ``@odata.id`` / ``@odata.bind`` URL (group-post-members.md)."""
    return f"{host}/{version}/{entity_set}/{object_id}"


# -- the backend ---------------------------------------------------------------------------------
BACKEND_ENV = "GRAPHDIR_TEST_BACKEND"
BACKENDS = ("sqlite", "postgresql")


def backend() -> str:
    """The store the HTTP suite runs on: ``GRAPHDIR_TEST_BACKEND`` (``sqlite`` unless set)."""
    value = os.environ.get(BACKEND_ENV, "") or "sqlite"
    if value not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_ENV}={value!r}: expected one of {', '.join(BACKENDS)}")
    return value


ON_POSTGRESQL = os.environ.get(BACKEND_ENV, "") == "postgresql"


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """Skip on PostgreSQL a test that is about SQLite itself (its file, WAL, internals): ``reason`` says what."""
    return pytest.mark.skipif(ON_POSTGRESQL, reason=f"SQLite-specific, not run with {BACKEND_ENV}=postgresql: {reason}")


def pg_difference(diagnosis: str) -> pytest.MarkDecorator:
    """A known behaviour difference of the PostgreSQL store (to be fixed in src/): the test is expected to
    fail there, strictly (it fails the run once fixed, so that the mark goes)."""
    return pytest.mark.xfail(ON_POSTGRESQL, reason=f"PostgreSQL store differs: {diagnosis}", strict=True)


class TemplateDb:
    """The session's template: :meth:`database_url` gives each app of a test a database in its state."""

    def __init__(self, sqlite_path: Path | None = None, postgres: ResettableDatabases | None = None) -> None:
        self.sqlite_path = sqlite_path
        self.postgres = postgres

    def database_url(self, tmp_path: Path, n: int) -> str:
        """The ``database_url`` for the ``n``-th app (0, 1, …) of the current test."""
        if self.postgres is not None:
            return self.postgres.get(n)
        assert self.sqlite_path is not None
        db = tmp_path / f"graphdir-{n}.db"
        shutil.copyfile(self.sqlite_path, db)
        return f"sqlite:///{db}"


def _bootstrap(database_url: str) -> None:
    graph = build_app(load_settings(database_url=database_url, env={})).state.graph
    graph.start()
    graph.stop()  # SQLite: checkpoints the WAL into the main file
    reopened = open_store(load_settings(database_url=database_url, env={}))
    reopened.open()
    try:  # the copies must not regenerate keys
        assert reopened.sync(reopened.get_meta("default_tenant")) is not None
    finally:
        reopened.close()


def execute_sql(graph: GraphApp, statement: str) -> None:
    """Run one SQL statement on the app's database, whichever the backend, outside the store (a test
    that needs a state the store never writes, e.g. rows as an older version left them)."""
    url = graph.settings.database_url
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(graph.settings.sqlite_path)) as conn, conn:
            conn.execute(statement)
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(statement.encode())


# -- the app -------------------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemplateDb]:
    """A database that already holds the default tenant, app id and signing keys (on the backend of :func:`backend`)."""
    if backend() == "postgresql":
        url = create_database()
        try:
            _bootstrap(url)
            databases = ResettableDatabases(url)
            try:
                yield TemplateDb(postgres=databases)
            finally:
                databases.close()
        finally:
            drop_database(url)
        return
    path = tmp_path_factory.mktemp("template") / "template.db"
    _bootstrap(f"sqlite:///{path}")
    yield TemplateDb(sqlite_path=path)


@pytest.fixture
async def _test_loop(anyio_backend: str) -> AsyncIterator[None]:
    """Keeps the test's event loop (anyio's runner) open until the apps of :func:`make_app` are stopped:
    a store's resources bound to that loop (PostgreSQL's read pool) are then closed on it, not cancelled
    with the loop (which could hang the teardown)."""
    yield


@pytest.fixture
def make_app(tmp_path: Path, template_db: TemplateDb, _test_loop: None) -> Iterator[Callable[..., Starlette]]:
    """Build and start an app on a fresh database in the template's state; ``overrides`` are settings."""
    apps: list[Starlette] = []
    counter = itertools.count()

    def factory(**overrides: Any) -> Starlette:
        app = build_app(load_settings(database_url=template_db.database_url(tmp_path, next(counter)), env={}, **overrides))
        # called from an async test (make_api), start() would read on the test's event loop, which a
        # database server's store refuses (it would stall the loop): start on a thread of its own
        off_loop(app.state.graph.start)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.state.graph.stop()


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def graph(app: Starlette) -> GraphApp:
    g: GraphApp = app.state.graph
    return g


def token_factory(graph: GraphApp) -> Callable[..., str]:
    def make(
        roles: list[str] | tuple[str, ...] | None = None,
        *,
        user_id: str | None = None,
        scopes: list[str] | tuple[str, ...] | None = None,
        wids: list[str] | tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> str:
        assert graph.ring is not None
        if user_id:
            return mint(graph.ring, graph.tenant["id"], app_id=graph.app_id, user_id=user_id, scopes=list(scopes or []), wids=list(wids or []), **kwargs)
        return mint(graph.ring, graph.tenant["id"], app_id=graph.app_id, roles=list(DEFAULT_ROLES if roles is None else roles), **kwargs)

    return make


@pytest.fixture
def token(graph: GraphApp) -> Callable[..., str]:
    """``token(["Group.Read.All"])`` for an application token; ``token(user_id=…, scopes=[…], wids=[…])`` for a delegated one."""
    return token_factory(graph)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` on a thread of its own and wait for it: the store refuses synchronous writes on a
    thread that runs an event loop (the tests' set-up may block its own loop for a moment)."""
    out: list[Any] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            err.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if err:
        raise err[0]
    return out[0]


class Api:
    """A small client for the tests: authenticated requests plus helpers that create objects."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.graph: GraphApp = app.state.graph
        self.token = token_factory(self.graph)
        self.default_token = self.token()
        self.admin_token = self.token([ADMIN_ROLE])
        self._n = itertools.count(1)

    @property
    def tenant_id(self) -> str:
        return str(self.graph.tenant["id"])

    # -- raw requests ------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """``path`` is relative to the origin (``/v1.0/groups``) or absolute (a nextLink, used verbatim)."""
        h = dict(headers or {})
        if auth:
            h.setdefault("Authorization", f"Bearer {token or self.default_token}")
        return await self.client.request(method, path, headers=h, **kwargs)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    # -- objects ----------------------------------------------------------------------------
    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._n)}-{uuid.uuid4().hex[:6]}"

    async def create_user(self, display_name: str | None = None, **props: Any) -> dict[str, Any]:
        nick = self.unique("user")
        body: dict[str, Any] = {
            "accountEnabled": True,
            "displayName": display_name or nick,
            "mailNickname": nick,
            "userPrincipalName": f"{nick}@{DOMAIN}",
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": PASSWORD},
        }
        body.update(props)
        resp = await self.post("/v1.0/users", json=body)
        assert resp.status_code == 201, resp.text
        user: dict[str, Any] = resp.json()
        return user

    async def create_group(
        self, display_name: str | None = None, kind: str = "security", version: str = "v1.0", token: str | None = None, **props: Any
    ) -> dict[str, Any]:
        """``kind``: ``security``, ``unified`` (Microsoft 365) or ``dynamic`` (dynamic security group)."""
        nick = self.unique("grp")
        body: dict[str, Any] = {"displayName": display_name or nick, "mailNickname": nick}
        if kind == "security":
            body.update(mailEnabled=False, securityEnabled=True)
        elif kind == "unified":
            body.update(mailEnabled=True, securityEnabled=False, groupTypes=["Unified"])
        elif kind == "dynamic":
            body.update(
                mailEnabled=False,
                securityEnabled=True,
                groupTypes=["DynamicMembership"],
                membershipRule='user.department -eq "Sales"',
                membershipRuleProcessingState="On",
            )
        else:
            raise ValueError(kind)
        body.update(props)
        resp = await self.post(f"/{version}/groups", json=body, token=token)
        assert resp.status_code == 201, resp.text
        group: dict[str, Any] = resp.json()
        return group

    async def seed(self, type_: str, display_name: str | None = None, members: list[str] | None = None, **props: Any) -> dict[str, Any]:
        """``POST /graphdir/admin/seed``: objects Graph cannot create (distribution, synced, devices, SPs, contacts)."""
        body: dict[str, Any] = {"type": type_, "displayName": display_name or self.unique(type_), **props}
        if members is not None:
            body["members"] = members
        resp = await self.post("/graphdir/admin/seed", json=body, token=self.admin_token)
        assert resp.status_code == 201, resp.text
        obj: dict[str, Any] = resp.json()
        return obj

    async def seed_group(self, kind: str, display_name: str | None = None, members: list[str] | None = None, **props: Any) -> dict[str, Any]:
        """``kind``: ``distribution``, ``mailSecurity``, ``synced`` (on-premises security group), ``security``, ``unified``."""
        nick = self.unique(kind)
        base: dict[str, Any] = {
            "distribution": {"mailEnabled": True, "securityEnabled": False, "groupTypes": []},
            "mailSecurity": {"mailEnabled": True, "securityEnabled": True, "groupTypes": []},
            "synced": {"mailEnabled": False, "securityEnabled": True, "groupTypes": [], "onPremisesSyncEnabled": True},
            "security": {"mailEnabled": False, "securityEnabled": True, "groupTypes": []},
            "unified": {"mailEnabled": True, "securityEnabled": False, "groupTypes": ["Unified"]},
        }[kind]
        return await self.seed("group", display_name or nick, members=members, mailNickname=nick, **base, **props)

    def bulk_users(self, count: int, prefix: str = "bulk") -> list[str]:
        """Insert ``count`` users straight into the store (fast set-up for paging/quota tests); returns their ids.

        Display names are ``{prefix}{i:05d}`` so that ``$orderby=displayName`` has a known order.
        """
        from graphdir.store.base import StoredObject

        created = "2024-01-01T00:00:00Z"
        objs: list[StoredObject] = []
        for i in range(count):
            uid = str(uuid.uuid4())
            nick = f"{prefix}{i:05d}"
            props = {
                "id": uid, "businessPhones": [], "displayName": nick, "givenName": None, "jobTitle": None, "mail": None,
                "mobilePhone": None, "officeLocation": None, "preferredLanguage": None, "surname": None,
                "userPrincipalName": f"{nick}@{DOMAIN}", "mailNickname": nick, "accountEnabled": True, "userType": "Member",
                "createdDateTime": created, "deletedDateTime": None,
            }  # fmt: skip
            objs.append(StoredObject(self.tenant_id, uid, "user", props, created))
        off_loop(self.graph.store.bulk_load, self.tenant_id, objs, [])
        return [o.id for o in objs]

    def bulk_members(self, group_id: str, member_ids: list[str], member_type: str = "user") -> None:
        """Add many existing objects to a group straight through the store."""
        off_loop(self.graph.store.bulk_load, self.tenant_id, [], [(group_id, m, member_type) for m in member_ids])

    # -- relationships ------------------------------------------------------------------------
    async def add_member(self, group_id: str, member_id: str, *, version: str = "v1.0", entity_set: str = "directoryObjects", **kw: Any) -> httpx.Response:
        return await self.post(f"/{version}/groups/{group_id}/members/$ref", json={"@odata.id": ref(member_id, entity_set, version)}, **kw)

    async def add_owner(self, group_id: str, owner_id: str, *, version: str = "v1.0", **kw: Any) -> httpx.Response:
        return await self.post(f"/{version}/groups/{group_id}/owners/$ref", json={"@odata.id": ref(owner_id, "users", version)}, **kw)

    async def ids(self, path: str, **kw: Any) -> list[str]:
        """Every id of a collection, following ``@odata.nextLink`` verbatim."""
        out: list[str] = []
        url: str | None = path
        while url:
            resp = await self.get(url, **kw)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            out += [item["id"] for item in body["value"]]
            url = body.get("@odata.nextLink")
        return out

    async def member_ids(self, group_id: str, version: str = "v1.0") -> set[str]:
        return set(await self.ids(f"/{version}/groups/{group_id}/members"))

    async def owner_ids(self, group_id: str, version: str = "v1.0") -> set[str]:
        return set(await self.ids(f"/{version}/groups/{group_id}/owners"))


@pytest.fixture
async def api(app: Starlette, client: httpx.AsyncClient) -> Api:
    return Api(app, client)


@pytest.fixture
async def make_api(make_app: Callable[..., Starlette]) -> AsyncIterator[Callable[..., Api]]:
    """``make_api(mail_enabled_security_membership="refuse")`` → an :class:`Api` on an app with those settings."""
    clients: list[httpx.AsyncClient] = []

    def factory(**overrides: Any) -> Api:
        app = make_app(**overrides)
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        clients.append(c)
        return Api(app, c)

    yield factory
    for c in clients:
        await c.aclose()
