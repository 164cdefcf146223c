"""Tail latency: back-to-back rounds of removals, with every stall the server records attributed to its round.

``python -m bench.tail [--scale full|quick] [--rounds 6] [--duration 5] [--config NAME:ENV=V,ENV=V …] [--reps 2]``

For each repetition and each configuration in turn (interleaved A/B, so that the box's noise hits
both alike): copy the seeded template database, start ``graphdir serve`` (bench/serve.py, pinned as
bench/run.py pins it) with ``GRAPHDIR_STALL_LOG`` set (graphdir.stalls) plus the configuration's
variables, warm up for 1 s, then run ``--rounds`` wrk runs of ``--duration`` s **back to back** (no
restore, no pause: the WAL, the checkpointer and the collector carry over from round to round),
each on fresh memberships of the pool (``remove_big`` by default: 1,000,000 lines at full scale, no
wrap). Per round: req/s, p50/p99/max from wrk, the load average, and the server's stall events inside
the round's window (count, worst and total ms per kind). ``--restore`` instead puts every round's
removals back between rounds, as bench/run.py does (the server idles ~1.5 s between rounds).

The template is seeded on first use (``bench/work-tail/template-<scale>.db``, kept; ~1.5 min full).
Results: ``bench/results/tail-<timestamp>.json`` and a table on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bench import seed
from bench.run import RESULTS, Bench, Case, Server, free_port, log

WORK = Path(__file__).resolve().parent / "work-tail"


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def template(scale_name: str) -> Path:
    path = WORK / f"template-{scale_name}.db"
    if path.exists():
        return path
    opts = {"quick": scale_name == "quick", "workdir": WORK / "seed", "no_pin": False, "no_ldap": True,
            "slapd_config": "indexed", "ldap_port": 0}
    b = Bench(opts)
    b.seed()  # with the signing keys
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.move(b.db, path)
    shutil.rmtree(WORK / "seed", ignore_errors=True)
    return path


def events(path: Path, t0: float, t1: float) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if e["t"] + e["ms"] / 1000 >= t0 and e["t"] <= t1:
            out.append(e)
    return out


def digest(evs: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[float]] = defaultdict(list)
    for e in evs:
        key = e["kind"] if e["kind"] != "gc" else f"gc{e.get('gen')}"
        by[key].append(e["ms"])
    d: dict[str, Any] = {k: {"n": len(v), "max_ms": round(max(v), 1), "sum_ms": round(sum(v), 1)} for k, v in by.items()}
    batches = sorted((e for e in evs if e["kind"] == "batch"), key=lambda e: -e["ms"])[:5]
    d["slowest_batches"] = [{"t": e["t"], "ms": e["ms"], "n": e["n"], "exec": e["exec"]} for e in batches]
    return d


def run_config(name: str, env: dict[str, str], tpl: Path, pool: str, rounds: int, duration: int, restore: bool,
               conns: int) -> list[dict[str, Any]]:
    db = WORK / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(tpl, db)
    with open(db, "rb+") as fh:  # a copy leaves ~2 GB of dirty page cache: flush it, or SQLite's first fsync pays for it
        os.fsync(fh.fileno())
    stall_log = WORK / f"stalls-{name}.jsonl"
    stall_log.unlink(missing_ok=True)
    saved = {k: os.environ.get(k) for k in [*env, "GRAPHDIR_STALL_LOG"]}
    os.environ.update(env)
    os.environ["GRAPHDIR_STALL_LOG"] = str(stall_log)
    b = Bench({"workdir": WORK, "no_pin": False, "quick": False, "duration": duration, "warmup": 0, "connections": conns})
    scale = seed.QUICK if "quick" in tpl.name else seed.FULL
    t = seed.make_tenant(scale)
    pairs = seed.pools(t)[pool]
    pool_path = WORK / f"pool_{pool}.txt"
    if not pool_path.exists():
        seed.write_pool(pool_path, pairs)
    from bench.run import Pool

    b.pools[pool] = Pool(pool, pool_path, pairs)
    con = sqlite3.connect(db)
    b.tenant_id = con.execute("SELECT id FROM tenants LIMIT 1").fetchone()[0]
    con.close()
    b.db = db
    server = Server(f"sqlite:///{db}", free_port(), WORK, "0")
    b.server = server
    case = Case("remove", "remove", "graphdir", "http", "DELETE", "/v1.0/groups/{g}/members/{m}/$ref", pool=pool, conns=conns, write="remove")
    out: list[dict[str, Any]] = []
    try:
        server.start()
        if restore:  # every round reuses the pool's first lines (put back after each round); warm up on its last ones
            b._wrk(case, pool, len(pairs) - 30_000, 1, conns)
            skip = 0
        else:  # rounds follow each other through the pool, never reusing a line
            skip = len(pairs) // 2
            skip += b._wrk(case, pool, skip, 1, conns)["consumed"]
        runs = []
        for rnd in range(rounds):
            la = load()
            t0 = time.time()
            r = b._wrk(case, pool, skip, duration, conns)
            t1 = time.time()
            runs.append((rnd, la, t0, t1, r))
            if restore:
                r["committed"] = b._restore(case, pool, skip, r["consumed"])
                time.sleep(0.5)
            else:
                skip += r["consumed"]
        time.sleep(0.6)  # the stall log flushes twice a second
        for rnd, la, t0, t1, r in runs:
            d = digest(events(stall_log, t0, t1))
            row = {"config": name, "round": rnd, "load": la, "rps": r["requests"] / (r["duration_us"] / 1e6),
                   "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "max_ms": r["lat_max_us"] / 1000,
                   "errors": r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"],
                   "wraps": r["wraps"], "t0": t0, "t1": t1, "stalls": d}
            out.append(row)
            kinds = " ".join(f"{k}:{v['n']}/{v['max_ms']}" for k, v in sorted(d.items()) if k != "slowest_batches" and k != "batch")
            sb = d["slowest_batches"][0]["ms"] if d["slowest_batches"] else 0
            log(f"   {name:10s} r{rnd} load {la:>5s} {row['rps']:7,.0f} req/s p50 {row['p50_ms']:6.2f} p99 {row['p99_ms']:7.2f} "
                f"max {row['max_ms']:7.1f} err {row['errors']} wraps {row['wraps']}  worst batch {sb:.1f} ms | {kinds}")
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


@click.command()
@click.option("--scale", type=click.Choice(["full", "quick"]), default="full", show_default=True)
@click.option("--rounds", type=int, default=6, show_default=True)
@click.option("--duration", type=int, default=5, show_default=True)
@click.option("--connections", type=int, default=64, show_default=True)
@click.option("--pool", type=click.Choice(["remove_big", "remove"]), default="remove_big", show_default=True)
@click.option("--restore", is_flag=True, help="Put each round's removals back between rounds (bench/run.py's method).")
@click.option("--reps", type=int, default=1, show_default=True, help="Repetitions of the configuration sequence (interleaved).")
@click.option("--config", "configs", multiple=True, help="NAME or NAME:VAR=VALUE,VAR=VALUE (server environment); default: one, 'default'.")
def main(scale: str, rounds: int, duration: int, connections: int, pool: str, restore: bool, reps: int, configs: tuple[str, ...]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    tpl = template(scale)
    parsed: list[tuple[str, dict[str, str]]] = []
    for c in configs or ("default",):
        name, _, rest = c.partition(":")
        parsed.append((name, dict(kv.split("=", 1) for kv in rest.split(",") if kv)))
    rows: list[dict[str, Any]] = []
    for rep in range(reps):
        for name, env in parsed:
            log(f"== rep {rep + 1}/{reps} config {name} {env} ({rounds} x {duration} s back to back{', restored' if restore else ''})")
            rows += [dict(r, rep=rep) for r in run_config(name, env, tpl, pool, rounds, duration, restore, connections)]
    log("")
    for name, _ in parsed:
        rs = [r for r in rows if r["config"] == name]
        log(f"{name:10s}: rounds {len(rs)}, worst p99 {max(r['p99_ms'] for r in rs):.1f} ms, median p99 "
            f"{statistics.median(r['p99_ms'] for r in rs):.1f} ms, median req/s {statistics.median(r['rps'] for r in rs):,.0f}, "
            f"loads {min(r['load'] for r in rs)}–{max(r['load'] for r in rs)}, errors {sum(r['errors'] for r in rs)}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"tail-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"scale": scale, "rounds": rounds, "duration": duration, "pool": pool, "restore": restore,
                               "configs": parsed, "rows": rows}, indent=1))
    log(f"(written to {out})")


if __name__ == "__main__":
    main()
