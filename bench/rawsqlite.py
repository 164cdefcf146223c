"""The storage ceiling: stdlib sqlite3 deleting memberships by primary key, no HTTP, no framework.

Runs in its own process (the bench pins it to the server's core) against the bench database while the
server is idle, with graphdir's writer settings (WAL, ``synchronous=FULL``, 64 MB cache, no automatic
checkpoints; the idle server's background checkpointer still runs) and group commit: ``--batch``
deletes per transaction, one fsync each. Modes:

* ``pk``: one ``DELETE FROM members WHERE tenant_id=? AND group_id=? AND member_id=?`` per membership;
* ``graphdir``: the statements graphdir's remove-member runs per request inside the writer's
  transaction (SAVEPOINT; SELECT the group row and decode its JSON; DELETE; INSERT the change
  record; RELEASE), to split storage cost from Python/HTTP cost;
* ``lean``: what a removal needs at least when the group's flags are cached: the DELETEs and the
  change records of a batch as two ``executemany`` calls, one timestamp per batch.

Change records written here go under the tenant id ``bench-raw:<tenant>`` (the same table, so the
same cost, but never in graphdir's own sequence); the bench deletes them afterwards.

Latency of a delete = the duration of its transaction (every delete in a batch waits for the commit).
Prints ``BENCHJSON {...}``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from datetime import UTC, datetime

import click
import orjson


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * (len(xs) - 1)))]


@click.command()
@click.option("--db", required=True)
@click.option("--tenant", required=True)
@click.option("--pool", required=True, type=click.Path(exists=True))
@click.option("--duration", default=5.0)
@click.option("--batch", default=64)
@click.option("--mode", type=click.Choice(["pk", "graphdir", "lean"]), default="pk")
def main(db: str, tenant: str, pool: str, duration: float, batch: int, mode: str) -> None:
    pairs = [tuple(line.split()) for line in open(pool) if line.strip()]
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=0", "busy_timeout=10000", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    raw_tenant = f"bench-raw:{tenant}"
    seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM changes WHERE tenant_id=?", (raw_tenant,)).fetchone()[0])
    txn_lat: list[float] = []
    deleted = done = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    end = t0 + duration
    i = 0
    while i < len(pairs) and time.perf_counter() < end:
        chunk = pairs[i : i + batch]
        n = len(chunk)
        i += n
        ts = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        if mode == "lean":
            cur = conn.executemany("DELETE FROM members WHERE tenant_id=? AND group_id=? AND member_id=?", [(tenant, g, m) for g, m in chunk])
            deleted += cur.rowcount
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            rows = [(raw_tenant, seq + k + 1, at, g, "group", "removeMember", m, "bench", None) for k, (g, m) in enumerate(chunk)]
            seq += len(chunk)
            conn.executemany("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)", rows)
            chunk = []
        for g, m in chunk:
            if mode == "pk":
                deleted += conn.execute("DELETE FROM members WHERE tenant_id=? AND group_id=? AND member_id=?", (tenant, g, m)).rowcount
            else:
                conn.execute("SAVEPOINT w")
                row = conn.execute("SELECT tenant_id, id, type, props, created, deleted FROM objects o WHERE o.tenant_id=? AND o.id=?", (tenant, g)).fetchone()
                orjson.loads(row[3])
                deleted += conn.execute("DELETE FROM members WHERE tenant_id=? AND group_id=? AND member_id=?", (tenant, g, m)).rowcount
                seq += 1
                conn.execute("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)",
                             (raw_tenant, seq, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), g, "group", "removeMember", m, "bench", None))
                conn.execute("RELEASE w")
        conn.execute("COMMIT")
        te = time.perf_counter()
        txn_lat += [te - ts] * n
        done += n
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    conn.close()
    out = {"requests": done, "deleted": deleted, "consumed": i, "duration_us": wall * 1e6, "cpu_s": cpu, "exhausted": i >= len(pairs),
           "p50_us": _pct(txn_lat, 50) * 1e6, "p90_us": _pct(txn_lat, 90) * 1e6, "p99_us": _pct(txn_lat, 99) * 1e6,
           "p999_us": _pct(txn_lat, 99.9) * 1e6, "lat_max_us": max(txn_lat, default=0) * 1e6}
    sys.stdout.write("BENCHJSON " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
