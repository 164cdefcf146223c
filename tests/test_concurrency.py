"""Concurrency stress and crash tests against a live ``graphdir serve``, on each backend (issue 10).

Each test starts a server on a database of its own — SQLite with one worker (more is refused by
design, docs/scaling.md#workers), PostgreSQL with ``--workers 2`` (a fresh database from
tests/pg_helpers.py) — and drives it with many concurrent HTTP requests. The outcome is then checked
over HTTP and through the store seam (:func:`graphdir.bootstrap.open_store`: ``list_members``,
``is_member``, ``list_member_of``, ``list_changes``), never by reading the database behind the
store's back.

Graph behaviour checked (docs/behaviour.md, Microsoft Graph "Add members" / "Remove member"):
adding a member that already is one is ``400 Request_BadRequest`` "One or more added object
references already exist for the following modified properties: 'members'."; removing a non-member
is ``404 Request_ResourceNotFound``; a server error (5xx) is never an answer to a race. Every
successful add/remove writes exactly one ``addMember``/``removeMember`` change record in the same
transaction, so the change log replays to the membership.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphdir.bootstrap import open_store
from graphdir.query import ListQuery
from graphdir.settings import load_settings
from graphdir.store.base import RecordedChange, Store
from live_helpers import LiveServer, free_port, server_env, start
from pg_helpers import fresh_database

ALREADY = "One or more added object references already exist for the following modified properties: 'members'."
DOMAIN = "contoso.onmicrosoft.com"
IN_FLIGHT = 64
JSON = {"Content-Type": "application/json"}


@dataclass
class Backend:
    """Where a test's server keeps its data, and the ``serve`` arguments for that backend."""

    name: str
    url: str
    workdir: Path
    args: tuple[str, ...]
    servers: list[LiveServer] = field(default_factory=list)

    def serve(self) -> LiveServer:
        """Start ``graphdir serve`` on this backend's database (stopped at the end of the test)."""
        env = server_env(self.workdir, database_url=self.url, default_domain=DOMAIN)
        server = start(self.workdir, free_port(), env, "--db", self.url, *self.args)
        self.servers.append(server)
        return server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """SQLite with one worker, or a fresh PostgreSQL database served by two workers."""
    if request.param == "sqlite":
        b = Backend("sqlite", f"sqlite:///{tmp_path / 'g.db'}", tmp_path, ())
        try:
            yield b
        finally:
            _stop_all(b)
        return
    with fresh_database() as url:
        b = Backend("postgresql", url, tmp_path, ("--workers", "2"))
        try:
            yield b
        finally:
            _stop_all(b)  # before the database is dropped


def _stop_all(b: Backend) -> None:
    for server in b.servers:
        server.stop()


# -- HTTP ---------------------------------------------------------------------------------------


def client(server: LiveServer) -> httpx.AsyncClient:
    """An HTTP/1.1 client with room for :data:`IN_FLIGHT` concurrent requests."""
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}/v1.0",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=httpx.Timeout(120.0),
        limits=limits,
        http1=True,
        http2=False,
    )


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


async def new_group(c: httpx.AsyncClient, name: str) -> str:
    body = {"displayName": name, "mailNickname": name, "mailEnabled": False, "securityEnabled": True}
    r = await c.post("/groups", json=body, headers=JSON)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def new_users(c: httpx.AsyncClient, prefix: str, n: int) -> list[str]:
    """``n`` users made with ``POST /users`` (concurrently), in order."""
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        body = {
            "accountEnabled": True,
            "displayName": f"{prefix} {i}",
            "mailNickname": f"{prefix}{i}",
            "userPrincipalName": f"{prefix}{i}@{DOMAIN}",
            "passwordProfile": {"password": "Str0ng!Passw0rd", "forceChangePasswordNextSignIn": False},
        }
        async with sem:
            r = await c.post("/users", json=body, headers=JSON)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def add(c: httpx.AsyncClient, gid: str, uid: str) -> httpx.Response:
    return await c.post(f"/groups/{gid}/members/$ref", json=ref(uid), headers=JSON)


async def remove(c: httpx.AsyncClient, gid: str, uid: str) -> httpx.Response:
    return await c.delete(f"/groups/{gid}/members/{uid}/$ref")


async def listing(c: httpx.AsyncClient, url: str) -> list[str]:
    """The ids of a collection, following ``@odata.nextLink``."""
    ids: list[str] = []
    next_url: str | None = url
    while next_url:
        r = await c.get(next_url)
        assert r.status_code == 200, r.text
        body = r.json()
        ids.extend(str(o["id"]) for o in body["value"])
        next_url = body.get("@odata.nextLink")
    return ids


async def http_members(c: httpx.AsyncClient, gid: str) -> list[str]:
    return await listing(c, f"/groups/{gid}/members?$top=999")


def error_of(r: httpx.Response) -> tuple[int, str, str]:
    err = r.json()["error"]
    return r.status_code, str(err["code"]), str(err["message"])


def assert_no_5xx(responses: list[httpx.Response]) -> None:
    bad = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not bad, f"{len(bad)} server errors, e.g. {bad[:3]}"


# -- the store seam -----------------------------------------------------------------------------


def open_seam(url: str) -> Store:
    store = open_store(load_settings(env={}, database_url=url))
    store.open()
    return store


def seam_members(store: Store, tid: str, gid: str) -> list[str]:
    ids: list[str] = []
    after: tuple[str, ...] | None = None
    while True:
        page = store.sync(store.list_members(tid, gid, ListQuery(top=500, after=after)))
        ids.extend(o.id for o in page.items)
        if page.next_after is None:
            return ids
        after = page.next_after


def seam_member_of(store: Store, tid: str, object_id: str) -> list[str]:
    ids: list[str] = []
    after: tuple[str, ...] | None = None
    while True:
        page = store.sync(store.list_member_of(tid, object_id, ListQuery(top=500, after=after)))
        ids.extend(o.id for o in page.items)
        if page.next_after is None:
            return ids
        after = page.next_after


def seam_changes(store: Store, tid: str) -> list[RecordedChange]:
    out: list[RecordedChange] = []
    after = 0
    while True:
        batch = store.sync(store.list_changes(tid, after, 1000))
        if not batch:
            return out
        out.extend(batch)
        after = batch[-1].seq


def edge_records(changes: list[RecordedChange], gid: str) -> dict[str, list[str]]:
    """The membership change records of group ``gid``, per member, in sequence order."""
    seqs = [c.seq for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "change records out of sequence order"
    per: dict[str, list[str]] = {}
    for c in changes:
        if c.change.object_id == gid and c.change.action in ("addMember", "removeMember"):
            assert c.change.related_id is not None
            per.setdefault(c.change.related_id, []).append(c.change.action)
    return per


def with_seam(url: str, fn: Callable[[Store], Any]) -> Any:
    store = open_seam(url)
    try:
        return fn(store)
    finally:
        store.close()


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


# -- 1. duplicate adds --------------------------------------------------------------------------


def test_duplicate_adds_answer_once(backend: Backend) -> None:
    """40 concurrent adds of one user to one group: one 204, 39 × 400 "already exist"; one member, one record."""
    server = backend.serve()
    tid = server.banner["tenant id"]

    async def go() -> tuple[str, str, list[httpx.Response], list[str]]:
        async with client(server) as c:
            gid = await new_group(c, "dup")
            (uid,) = await new_users(c, "dup", 1)
            responses = list(await asyncio.gather(*(add(c, gid, uid) for _ in range(40))))
            return gid, uid, responses, await http_members(c, gid)

    gid, uid, responses, members = run(go())
    assert_no_5xx(responses)
    assert Counter(r.status_code for r in responses) == {204: 1, 400: 39}
    assert {error_of(r) for r in responses if r.status_code == 400} == {(400, "Request_BadRequest", ALREADY)}
    assert members == [uid]

    def check(store: Store) -> None:
        assert seam_members(store, tid, gid) == [uid]
        assert store.sync(store.is_member(tid, gid, uid))
        assert edge_records(seam_changes(store, tid), gid) == {uid: ["addMember"]}

    server.stop()
    with_seam(backend.url, check)


# -- 2. racing adds and removes of the same edges -----------------------------------------------


def test_racing_adds_and_removes_replay_to_the_membership(backend: Backend) -> None:
    """400 random adds/removes of 5 users × 1 group in flight together: 204/400/404 only, and the
    change log (alternating add/remove per edge, one record per 204) replays to the membership."""
    server = backend.serve()
    tid = server.banner["tenant id"]
    rng = random.Random(10)
    ops = [(rng.choice(("add", "remove")), rng.randrange(5)) for _ in range(400)]

    async def go() -> tuple[str, list[str], list[httpx.Response], list[str]]:
        async with client(server) as c:
            gid = await new_group(c, "race")
            uids = await new_users(c, "race", 5)
            responses = list(await asyncio.gather(*((add if op == "add" else remove)(c, gid, uids[i]) for op, i in ops)))
            return gid, uids, responses, await http_members(c, gid)

    gid, uids, responses, listed = run(go())
    assert_no_5xx(responses)
    ok: Counter[tuple[str, str]] = Counter()
    for (op, i), r in zip(ops, responses, strict=True):
        if r.status_code == 204:
            ok[(uids[i], op)] += 1
        elif op == "add":
            assert error_of(r) == (400, "Request_BadRequest", ALREADY), r.text
        else:
            assert r.status_code == 404 and error_of(r)[1] == "Request_ResourceNotFound", r.text
    assert len(listed) == len(set(listed)), f"a member listed twice: {listed}"

    def check(store: Store) -> None:
        per_edge = edge_records(seam_changes(store, tid), gid)
        assert set(per_edge) <= set(uids)
        replayed: set[str] = set()
        for uid in uids:
            actions = per_edge.get(uid, [])
            want = ["addMember" if k % 2 == 0 else "removeMember" for k in range(len(actions))]
            assert actions == want, f"records of edge {gid}->{uid} do not alternate from add: {actions}"
            assert actions.count("addMember") == ok[(uid, "add")], uid
            assert actions.count("removeMember") == ok[(uid, "remove")], uid
            if actions and actions[-1] == "addMember":
                replayed.add(uid)
        by_is_member = {uid for uid in uids if store.sync(store.is_member(tid, gid, uid))}
        assert set(listed) == by_is_member == replayed == set(seam_members(store, tid, gid))

    server.stop()
    with_seam(backend.url, check)
    assert sum(ok.values()) > 0  # the race did something


# -- 3. adds racing the group's deletion --------------------------------------------------------


def test_adds_racing_group_deletion_leave_no_membership(backend: Backend) -> None:
    """50 concurrent adds of new users while ``DELETE /groups/{id}`` runs among them: each add is 204
    (before the delete) or 404 (after); afterwards the group and every membership of it are gone."""
    server = backend.serve()
    tid = server.banner["tenant id"]

    async def go() -> tuple[str, list[str], list[httpx.Response], httpx.Response, int, dict[str, list[str]]]:
        async with client(server) as c:
            gid = await new_group(c, "doomed")
            old = await new_users(c, "old", 3)
            for uid in old:
                assert (await add(c, gid, uid)).status_code == 204
            new = await new_users(c, "new", 50)
            tasks = [asyncio.ensure_future(add(c, gid, uid)) for uid in new[:25]]
            deletion = asyncio.ensure_future(c.delete(f"/groups/{gid}"))
            tasks += [asyncio.ensure_future(add(c, gid, uid)) for uid in new[25:]]
            responses = list(await asyncio.gather(*tasks))
            deleted = await deletion
            gone = (await c.get(f"/groups/{gid}")).status_code
            member_of = {uid: await listing(c, f"/users/{uid}/memberOf?$top=999") for uid in old + new}
            return gid, old + new, responses, deleted, gone, member_of

    gid, users, responses, deleted, gone, member_of = run(go())
    assert_no_5xx([*responses, deleted])
    assert deleted.status_code == 204, deleted.text
    for r in responses:
        assert r.status_code == 204 or error_of(r)[:2] == (404, "Request_ResourceNotFound"), r.text
    assert gone == 404
    assert {uid: ids for uid, ids in member_of.items() if gid in ids} == {}

    def check(store: Store) -> None:
        assert store.sync(store.get(tid, gid)) is None
        assert seam_members(store, tid, gid) == []
        assert [uid for uid in users if gid in seam_member_of(store, tid, uid)] == []
        assert [uid for uid in users if store.sync(store.is_member(tid, gid, uid))] == []
        changes = seam_changes(store, tid)
        deletes = [c.seq for c in changes if c.change.object_id == gid and c.change.action == "delete"]
        assert len(deletes) == 1, deletes
        late = [c for c in changes if c.change.object_id == gid and c.change.action == "addMember" and c.seq > deletes[0]]
        assert late == [], f"memberships recorded after the group's deletion: {late}"
        adds = {c.change.related_id for c in changes if c.change.object_id == gid and c.change.action == "addMember"}
        acked = {uid for uid, r in zip(users[3:], responses, strict=True) if r.status_code == 204}
        assert adds == set(users[:3]) | acked

    server.stop()
    with_seam(backend.url, check)


# -- 4. SIGKILL mid-load ------------------------------------------------------------------------


def _terminate_connections(url: str) -> int:
    """End every other session on the server's database (what a PostgreSQL restart does to them)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return sum(1 for (ok,) in rows if ok)


def test_sigkill_mid_load_keeps_every_acknowledged_add_and_nothing_half_applied(backend: Backend) -> None:
    """300 concurrent adds of distinct users (64 in flight); on PostgreSQL the server's database
    sessions are terminated under load and the service must recover; then the whole server (every
    worker) is SIGKILLed with requests in flight. Every 204 is a member, every member has exactly
    one addMember record and every record's edge exists, nobody unrequested is a member, and a
    restarted server serves the listing."""
    server = backend.serve()
    tid = server.banner["tenant id"]
    pg = backend.name == "postgresql"
    total, kill_after, terminate_after = 300, 100, 30
    state: dict[str, Any] = {"done": 0, "terminated": False, "terminated_sessions": 0, "recovered": False, "read": False, "killed": False}
    outcome: dict[str, int | str] = {}
    late_adds: list[int] = []  # statuses of adds sent after the database sessions were terminated
    late_reads: list[int] = []

    async def go() -> tuple[str, list[str], list[str]]:
        async with client(server) as c:
            gid = await new_group(c, "crash")
            spare = await new_users(c, "spare", 5)  # never requested: must never become members
            users = await new_users(c, "load", total)
            sem = asyncio.Semaphore(IN_FLIGHT)
            kill_now = asyncio.Event()
            resume = asyncio.Event()
            resume.set()

            async def one(uid: str) -> None:
                async with sem:
                    await resume.wait()
                    if state["killed"]:
                        outcome[uid] = "not sent"
                        return
                    sent_after_terminate = state["terminated"]
                    try:
                        r = await add(c, gid, uid)
                    except httpx.TransportError as exc:
                        outcome[uid] = type(exc).__name__
                        return
                    outcome[uid] = r.status_code
                    if sent_after_terminate:
                        late_adds.append(r.status_code)
                        if r.status_code == 204:
                            state["recovered"] = True
                    state["done"] += 1
                    if pg and state["done"] == terminate_after:
                        resume.clear()  # no new add is sent until the cut and the reads after it are done
                        state["terminated_sessions"] = await asyncio.to_thread(_terminate_connections, backend.url)
                        state["terminated"] = True
                        # reads after the cut: every worker's pool must replace its dead connections
                        reads = await asyncio.gather(*(c.get(f"/groups/{gid}") for _ in range(IN_FLIGHT // 2)))
                        late_reads.extend(r.status_code for r in reads)
                        state["read"] = True
                        resume.set()
                    if state["done"] >= kill_after and (not pg or (state["read"] and len(late_adds) >= 50)):
                        kill_now.set()

            async def killer() -> None:
                await kill_now.wait()
                os.killpg(server.proc.pid, signal.SIGKILL)
                state["killed"] = True

            k = asyncio.ensure_future(killer())
            await asyncio.gather(*(one(u) for u in users))
            if not k.done():  # the load ended without the trigger
                kill_now.set()
            await k
            return gid, users, spare

    gid, users, spare = run(go())
    server.proc.wait(timeout=30)
    server.stop()  # reaps the pipe; the processes are already gone
    acked = {uid for uid in users if outcome.get(uid) == 204}
    statuses = Counter(v for v in outcome.values())
    # answers the server gave (not transport errors of the kill): 204, or 503 while its database sessions were cut
    answered = {v for v in statuses if isinstance(v, int)}
    assert answered <= ({204, 503} if pg else {204}), statuses
    if pg:
        assert state["terminated_sessions"] > 0, "no server session was terminated"
        assert state["recovered"], f"no add succeeded after the database sessions were terminated: {statuses}"
        assert set(late_adds) == {204}, f"adds sent after the sessions were cut: {Counter(late_adds)}"
        assert set(late_reads) == {200}, f"reads sent after the sessions were cut: {Counter(late_reads)}"
    assert len(acked) >= kill_after // 2, statuses
    cut_off = {"ReadError", "RemoteProtocolError", "WriteError"}  # a request sent, its answer never read
    assert cut_off & set(statuses), f"the kill hit no request in flight: {statuses}"

    def check(store: Store) -> list[str]:
        members = seam_members(store, tid, gid)
        assert len(members) == len(set(members))
        missing = acked - set(members)
        assert not missing, f"{len(missing)} acknowledged adds lost by the crash"
        assert set(members) <= set(users), "a member that was never requested"
        assert not set(members) & set(spare)
        records = edge_records(seam_changes(store, tid), gid)
        assert {uid: acts for uid, acts in records.items() if acts != ["addMember"]} == {}
        assert set(records) == set(members), "a membership without its record, or a record without its membership"
        assert all(store.sync(store.is_member(tid, gid, uid)) for uid in acked)
        return members

    members = with_seam(backend.url, check)

    again = backend.serve()

    async def listed() -> list[str]:
        async with client(again) as c:
            return await http_members(c, gid)

    assert sorted(run(listed())) == sorted(members)
