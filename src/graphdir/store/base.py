"""The storage interface: one small seam that SQLite and PostgreSQL implement.

Every key is led by the tenant id. Reads are awaitable; every write
goes through :meth:`Store.write`, which runs a function against a
:class:`Txn` inside the single writer's transaction. Many concurrent writes are
committed together (group commit), and the change/audit records a write emits
with :meth:`Txn.record` land in the same transaction as the change itself.

The store knows nothing of Graph JSON: objects are a type name plus a dict of
attributes. Storage exceptions never leave this package untranslated: they
become :class:`StoreError` subclasses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import orjson

from graphdir.query import ListQuery

T = TypeVar("T")

#: The relationships :meth:`Store.list_edges_many` reads.
EdgeRelation = Literal["members", "owners", "memberOf"]
#: Each relation as (table, the anchor's column, the related object's column).
EDGE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "members": ("members", "group_id", "member_id"),
    "owners": ("owners", "group_id", "owner_id"),
    "memberOf": ("members", "member_id", "group_id"),
}


class StoreError(Exception):
    """Base of every storage failure that leaves the store.

    The subclasses say whose fault it is: :class:`Conflict` and :class:`InvalidInput` the
    request's (400), :class:`Unavailable` nobody's (503, worth retrying). A plain ``StoreError``
    is a bug (500): it must never be answered as "unavailable", which clients retry.
    """


class Conflict(StoreError):
    """A uniqueness rule was violated (e.g. a duplicate userPrincipalName). ``what`` names the Graph
    property or relationship that is duplicated, never the database's own text (which must not reach
    a client)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class InvalidInput(StoreError):
    """The request asks for something the store cannot answer as asked, e.g. a value too large to
    compare or store. The client's fault: answered 400, never retried."""


class InvalidPosition(InvalidInput):
    """A keyset position (from a ``$skiptoken``) that does not fit the listing's order."""


class Gone(StoreError):
    """A write referred to an object that another transaction deleted meanwhile (a foreign key of a
    membership or ownership found no row): answered 404, as if the check had not found it."""


class Unavailable(StoreError):
    """The database cannot be used right now: another process holds its lock, the disk failed or
    is full, the file cannot be opened, or the store is closed. Answered 503 with Retry-After."""


@dataclass(slots=True)
class StoredObject:
    """A directory object as stored: its type and its attributes."""

    tenant_id: str
    id: str
    type: str  # "user" | "group" | "device" | "servicePrincipal" | "orgContact"
    props: dict[str, Any]
    created: str
    deleted: str | None = None


@dataclass
class Page:
    """One page of a keyset-paginated listing."""

    items: list[StoredObject]
    next_after: tuple[str, ...] | None = None
    count: int | None = None
    #: with ``ListQuery.rendered``: (type, rendered bytes) per item instead of ``items``
    rendered: list[tuple[str, bytes]] | None = None


#: Encodes an object's default projection: ``render(type, id, props) -> bytes``. The store keeps
#: the bytes without knowing what they mean (the wire layer supplies the function).
Renderer = Callable[[str, str, dict[str, Any]], bytes]


@dataclass(frozen=True)
class Renderings:
    """The default projections the wire layer serves, by *rendering key*.

    A key names one projection (the wire layer derives it from the property lists, so it changes
    whenever a projection does; equal projections share a key and their bytes). Each row keeps the
    ``stored`` key's rendering, made at write time, next to that key. A list page asks for a key
    (``ListQuery.rendered``); a row whose stored key differs — written before the projection
    changed, or by an older graphdir — and any key other than ``stored`` are rendered on read
    from the attributes, so a page never carries a stale projection.
    """

    stored: str
    render: Mapping[str, Renderer]

    def __post_init__(self) -> None:
        if self.stored not in self.render:
            raise ValueError(f"no renderer for the stored rendering {self.stored!r}")


@dataclass(slots=True)
class Change:
    """A change record written in the same transaction as the change (for delta and audit)."""

    object_id: str
    object_type: str
    action: str  # "create" | "update" | "delete" | "softDelete" | "addMember" | "removeMember" | ...
    related_id: str | None = None
    actor: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(slots=True)
class RecordedChange:
    """A change record as stored: its per-tenant sequence number (commit order within the tenant: a
    reader that saw ``seq`` n never later finds a new record below n) and the batch's timestamp."""

    seq: int
    at: str
    change: Change


#: The columns of a change record, in the order :func:`recorded_change` reads them (both backends).
CHANGE_COLS = "seq, at, object_id, object_type, action, related_id, actor, detail"


def recorded_change(r: tuple[Any, ...]) -> RecordedChange:
    """A ``changes`` row read as :data:`CHANGE_COLS` (``detail`` is JSON text or NULL)."""
    return RecordedChange(int(r[0]), r[1], Change(r[2], r[3], r[4], r[5], r[6], orjson.loads(r[7]) if r[7] else None))


@dataclass
class StoredApp:
    """An application registration: client id, name and attributes (hashed secrets, granted permissions…).

    The store keeps ``props`` opaque; :mod:`graphdir.auth.apps` gives them meaning.
    """

    tenant_id: str
    app_id: str
    display_name: str
    props: dict[str, Any]
    created: str


@dataclass(slots=True)
class EdgeWrite:
    """The one mutation of a checked write (:meth:`Store.write_one`): add or remove one member or owner.

    It is applied as a single statement after the check returned it, and no caller code runs after
    that statement: ``change`` is recorded in the same transaction when the edge changed, and the
    exception ``unchanged()`` makes is raised (nothing written) when it did not — the edge already
    existed (add) or did not exist (remove). It is made only then: the hot path builds no error.
    """

    relation: Literal["members", "owners"]
    op: Literal["add", "remove"]
    group_id: str
    other_id: str
    other_type: str = ""
    change: Change | None = None
    unchanged: Callable[[], BaseException] | None = None


class TxnView(Protocol):
    """What a checked write's check may do inside the writer's transaction: read, nothing else."""

    tenant_id: str

    def get(self, object_id: str) -> StoredObject | None:
        """A copy of the object."""
        ...
    def peek(self, object_id: str) -> StoredObject | None:
        """The object as the transaction sees it, read-only (no copy): for checks, never to be modified."""
        ...
    def get_by_upn(self, upn: str) -> StoredObject | None: ...
    def has_member(self, group_id: str, member_id: str) -> bool: ...
    def has_owner(self, group_id: str, owner_id: str) -> bool: ...
    def count_owners(self, group_id: str) -> int: ...
    def ancestors(self, group_id: str) -> set[str]: ...


class Txn(TxnView, Protocol):
    """What a write function may do inside the writer's transaction (under a savepoint of its own)."""

    def insert(self, obj: StoredObject) -> None: ...
    def update(self, obj: StoredObject) -> None: ...
    def purge(self, object_id: str) -> None: ...
    def add_member(self, group_id: str, member_id: str, member_type: str) -> bool: ...
    def remove_member(self, group_id: str, member_id: str) -> bool: ...
    def add_owner(self, group_id: str, owner_id: str, owner_type: str) -> bool: ...
    def remove_owner(self, group_id: str, owner_id: str) -> bool: ...
    def record(self, change: Change) -> None: ...

    # identity (issue 3): applications, directory role assignments, one-time authorization codes
    def put_application(self, app: StoredApp) -> None: ...
    def delete_application(self, app_id: str) -> bool: ...
    def assign_role(self, principal_id: str, role_id: str) -> bool: ...
    def unassign_role(self, principal_id: str, role_id: str) -> bool: ...
    def put_auth_code(self, code_hash: str, props: dict[str, Any], expires: float) -> None: ...
    def take_auth_code(self, code_hash: str) -> tuple[dict[str, Any], float] | None: ...


class Store(Protocol):
    """Reads are awaitable (an embedded database answers them at once, a network database off the
    event loop); writes are funnelled through the writer. Code without an event loop (the CLI,
    start-up) runs a read with :meth:`sync`."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def migrate(self) -> int:
        """Create or upgrade the schema (this backend's migrations); returns the version now recorded."""
        ...
    def schema_version(self) -> int: ...
    async def open_reads(self) -> None:
        """Prepare the calling event loop to read (a server's loop, at start-up: a network database's
        connection pool); reads awaited on other loops work too, perhaps one thread hop slower."""
        ...
    async def close_reads(self) -> None:
        """Release what :meth:`open_reads` took, before the calling loop ends."""
        ...
    def sync(self, aw: Awaitable[T]) -> T:
        """Run one of this store's awaitables (a read) from code without an event loop and return its
        result: the CLI and start-up read through this."""
        ...
    def write(self, tenant_id: str, fn: Callable[[Txn], T]) -> Awaitable[T]:
        """Run ``fn`` in the writer's next transaction, under a savepoint: when it raises, nothing it
        changed is kept."""
        ...
    def write_one(self, tenant_id: str, check: Callable[[TxnView], EdgeWrite]) -> Awaitable[None]:
        """A checked write: ``check`` reads (and may raise), then the one mutation it returns is
        applied. Cheaper than :meth:`write` (no savepoint) and just as safe."""
        ...
    def write_sync(self, tenant_id: str, fn: Callable[[Txn], T]) -> T:
        """:meth:`write` for code without an event loop (CLI, start-up, worker threads); refused on
        a thread that runs an event loop, where it would block every request."""
        ...

    # tenants and keys
    async def get_tenant(self, tenant_id: str) -> dict[str, Any] | None: ...
    async def list_tenants(self) -> list[dict[str, Any]]: ...
    def put_tenant(self, tenant: dict[str, Any]) -> None: ...
    async def get_meta(self, key: str) -> str | None: ...
    def put_meta(self, key: str, value: str) -> None: ...

    # objects
    async def get(self, tenant_id: str, object_id: str) -> StoredObject | None: ...
    async def get_by_upn(self, tenant_id: str, upn: str) -> StoredObject | None: ...
    async def get_many(self, tenant_id: str, ids: Iterable[str]) -> list[StoredObject]: ...
    async def list_objects(self, tenant_id: str, types: tuple[str, ...], q: ListQuery) -> Page: ...

    # relationships
    async def list_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page: ...
    async def list_owners(self, tenant_id: str, group_id: str, q: ListQuery) -> Page: ...
    async def list_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page: ...
    async def list_edges_many(self, tenant_id: str, relation: EdgeRelation, anchor_ids: Sequence[str], per_anchor_limit: int) -> dict[str, list[StoredObject]]:
        """For each anchor, its first ``per_anchor_limit`` live related objects in id order, in one
        read (``$expand`` of a page: docs/behaviour.md#expand). ``relation`` is ``members`` or
        ``owners`` (anchors are groups) or ``memberOf`` (anchors are members); an anchor with none is
        absent from the result."""
        ...
    async def is_member(self, tenant_id: str, group_id: str, member_id: str) -> bool: ...
    async def is_owner(self, tenant_id: str, group_id: str, owner_id: str) -> bool: ...

    # transitive relationships (graphdir.store.transitive): live groups only, walked through live groups only
    async def transitive_group_ids(self, tenant_id: str, object_id: str) -> set[str]:
        """The ids of every live group that holds the object, directly or through nested groups."""
        ...
    async def list_transitive_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page:
        """Those groups as a listing (cast, filter, search, count, order and keyset page as any listing)."""
        ...
    async def list_transitive_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        """The group's members and the members of its nested groups at any depth, each once."""
        ...

    # change records (delta and audit read these), in sequence order
    async def list_changes(self, tenant_id: str, after: int = 0, limit: int = 1000) -> list[RecordedChange]:
        """The tenant's change records with ``seq > after``, at most ``limit``, in ``seq`` order."""
        ...

    # bulk seeding (tests, benchmarks, `graphdir seed`)
    def bulk_load(self, tenant_id: str, objects: Iterable[StoredObject], members: Iterable[tuple[str, str, str]]) -> None: ...

    # identity (issue 3): writes go through write/write_sync with the Txn methods above
    async def get_application(self, tenant_id: str, app_id: str) -> StoredApp | None: ...
    async def list_applications(self, tenant_id: str) -> list[StoredApp]: ...
    async def role_ids(self, tenant_id: str, principal_id: str) -> list[str]: ...
    async def list_role_assignments(self, tenant_id: str) -> list[tuple[str, str]]: ...


def run_now(aw: Awaitable[T]) -> T:
    """The result of an awaitable that completes without suspending: an embedded store's reads, which
    are ``async def`` for the seam's sake but never wait. Raises ``RuntimeError`` if it would suspend."""
    gen = aw.__await__()
    try:
        gen.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    gen.close()
    raise RuntimeError("this awaitable suspends: run it on an event loop")
