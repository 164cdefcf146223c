"""Profile graphdir's request path in process, without an HTTP server or a load generator.

Calls the ASGI app (``bench.app:create_app``, i.e. graphdir's app) directly with synthetic scopes, so
the figures are the application's own cost per request (routing, auth, directory, store, JSON), apart
from granian's. Writes are awaited through the real writer thread (group commit), ``concurrency``
requests at a time. Usage (on a database seeded by ``python -m bench.run --keep``)::

    python -m bench.profile_app --db /path/graphdir.db --case remove -n 20000 -c 64 [--cprofile]

Cases: noop (the stack's trivial route), get_group, member_check, list100, list999, remove, add.
With ``--cprofile``, ``PROFILE_DUMP=file.prof`` also writes the raw profile (for ``pstats``/snakeviz).
Instructions per request, free of this box's noise: run it under ``valgrind --tool=callgrind`` with
two values of ``-n`` and divide the difference of the totals by the difference of ``-n``.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import click


def _scope(method: str, path: str, query: str, token: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8080"), (b"authorization", f"Bearer {token}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": headers, "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000),
    }


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]

    await app(scope, receive, send)
    return status


def has_signing_keys(db: str) -> bool:
    """Does the database already hold the service's signing keys? Without them the app's start-up would
    write new ones into the database under test (and the profile would measure a database that changed)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key='signing_keys'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        con.close()
    return bool(row and row[0] and row[0] != "[]")


@click.command()
@click.option("--db", "db", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--case", "case", default="remove")
@click.option("-n", "n", default=10_000)
@click.option("-c", "concurrency", default=64)
@click.option("--cprofile", is_flag=True, help="Profile the event-loop thread with cProfile (top 35 by tottime).")
def main(db: str, case: str, n: int, concurrency: int, cprofile: bool) -> None:
    if not has_signing_keys(db):
        raise click.UsageError(f"{db} has no signing keys: profile a database seeded by `python -m bench.run --keep` "
                               "(bench/work/graphdir.db), or start `graphdir serve` on it once")
    os.environ["GRAPHDIR_DATABASE_URL"] = f"sqlite:///{Path(db).resolve()}"
    os.environ["GRAPHDIR_BENCH_NOOP"] = "1"
    from bench.app import create_app
    from graphdir.auth.tokens import mint
    from graphdir.odata.options import encode_skiptoken

    app = create_app()
    graph = app.state.graph
    graph.start()
    tid = graph.tenant["id"]
    token = mint(graph.ring, tid, app_id=graph.app_id, roles=["Directory.ReadWrite.All", "GroupMember.ReadWrite.All"])
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    big, size = con.execute(
        "SELECT group_id, count(*) c FROM members WHERE tenant_id=? GROUP BY group_id ORDER BY c DESC LIMIT 1", (tid,)
    ).fetchone()
    work: list[tuple[str, str, str, bytes]] = []
    if case in ("remove", "member_check", "add"):
        rows = con.execute("SELECT group_id, member_id FROM members WHERE tenant_id=? AND group_id=? LIMIT ?", (tid, big, n)).fetchall()
        for g, m in rows:
            if case == "remove":
                work.append(("DELETE", f"/v1.0/groups/{g}/members/{m}/$ref", "", b""))
            elif case == "member_check":
                work.append(("GET", f"/v1.0/groups/{g}/members/{m}", "", b""))
        if case == "add":  # re-add what a previous remove run took out is not known here: add to a fresh group instead
            small = con.execute("SELECT id FROM objects WHERE tenant_id=? AND type='group' AND id<>? LIMIT 1", (tid, big)).fetchone()[0]
            users = con.execute("SELECT id FROM objects WHERE tenant_id=? AND type='user' LIMIT ?", (tid, n)).fetchall()
            for (u,) in users:
                body = f'{{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/{u}"}}'.encode()
                work.append(("POST", f"/v1.0/groups/{small}/members/$ref", "", body))
    elif case == "noop":
        work = [("DELETE", f"/bench/noop/v1.0/groups/{big}/members/x/$ref", "", b"")] * n
    elif case == "get_group":
        work = [("GET", f"/v1.0/groups/{big}", "", b"")] * n
    elif case in ("list100", "list999"):
        top = 100 if case == "list100" else 999
        work = [("GET", f"/v1.0/groups/{big}/members", f"$top={top}", b"")] * n
    elif case == "list999_deep":
        after = con.execute("SELECT member_id FROM members WHERE tenant_id=? AND group_id=? ORDER BY member_id LIMIT 1 OFFSET ?",
                            (tid, big, size - 1000)).fetchone()[0]
        work = [("GET", f"/v1.0/groups/{big}/members", f"$top=999&$skiptoken={encode_skiptoken((after,), None)}", b"")] * n
    else:
        raise click.BadParameter(f"unknown case {case}")
    con.close()

    async def run() -> dict[int, int]:
        statuses: dict[int, int] = {}
        it = iter(work)

        async def worker() -> None:
            for method, path, query, body in it:
                s = await _call(app, _scope(method, path, query, token, body), body)
                statuses[s] = statuses.get(s, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return statuses

    prof = cProfile.Profile() if cprofile else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    statuses = asyncio.run(run())
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    graph.stop()
    done = sum(statuses.values())
    print(f"{case}: {done} requests, statuses {statuses}, {done / wall:,.0f} req/s in process, "
          f"wall {wall / done * 1e6:.1f} µs/req, process CPU {cpu / done * 1e6:.1f} µs/req")
    if prof:
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(35)
        if os.environ.get("PROFILE_DUMP"):
            prof.dump_stats(os.environ["PROFILE_DUMP"])


if __name__ == "__main__":
    main()
