"""The backends side by side: ``python -m bench.backends`` (see bench/README.md#backends).

One run seeds ONE SQLite database and ONE PostgreSQL database (a throwaway database created on the
server of ``--pg-url`` and dropped at the end) with the same tenant (same ids, same memberships),
starts three servers — ``graphdir serve`` (via bench/serve.py) on SQLite with 1 worker, on
PostgreSQL with 1 worker and on PostgreSQL with 2 workers — and drives the cases of bench/run.py
(``ceiling``, ``remove``, ``add``, ``list999_p0``) against each, interleaved: every round runs every
case on every configuration (the configurations' order rotates from round to round).

Ratios: each configuration's ``× ceiling`` is its req/s over the trivial 204 route (``ceiling``)
served by **its own server in the same round**; ``× sqlite/1 ceiling`` divides by the SQLite
server's ceiling of the same round, so that the configurations compare as plain req/s.

The pieces are bench/run.py's: ``Server``, ``Case`` definitions (``Bench.cases``), ``Bench.seed``
(SQLite + pools), ``Bench.run_case`` (warm-up, wrk, restore, commit check) and ``summarize``. This
module adds the PostgreSQL database (create, seed through ``PostgresStore.bulk_load``, restore with
psycopg, drop) and the report.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import psycopg
from psycopg import sql

from bench import seed
from bench.run import BENCH, README, RESULTS, ROOT, Bench, Case, Server, free_port, log, machine, med, summarize

CASES = ("ceiling", "remove", "add", "list999_p0", "get_group", "check_member_groups", "transitive_member_of", "transitive_members",
         "remove_nested_c1")
MARK_START, MARK_END = "<!-- bench:backends:start -->", "<!-- bench:backends:end -->"


@dataclass
class Config:
    """One server configuration: a backend, a worker count and where its processes run."""

    name: str
    backend: str  # sqlite | postgresql
    workers: int
    cpu_server: str | None
    cpu_client: str | None
    placement: str
    server: Server | None = None


def configs(pin: bool) -> list[Config]:
    one = "graphdir (granian) pinned to core 0, wrk to core 1"
    return [
        Config("sqlite/1", "sqlite", 1, "0" if pin else None, "1" if pin else None, one if pin else "unpinned"),
        Config("postgresql/1", "postgresql", 1, "0" if pin else None, "1" if pin else None,
               (one if pin else "graphdir and wrk unpinned") + "; PostgreSQL's backends unpinned"),
        Config("postgresql/2", "postgresql", 2, None, None,
               "unpinned (2 workers cannot be pinned sensibly on 2 cores): graphdir's workers, wrk and PostgreSQL's backends float"),
    ]


def _admin_url(url: str) -> tuple[str, str]:
    """(URL of the server's ``postgres`` database, name of the bench database) for ``url``."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise click.UsageError(f"--pg-url needs a database name: {url}")
    return urlunsplit(parts._replace(path="/postgres")), name


def pg_exists(url: str) -> bool:
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as con:
        return con.execute("SELECT 1 FROM pg_database WHERE datname=%s", (name,)).fetchone() is not None


def pg_create(url: str) -> None:
    """Create the throwaway bench database; refuse one that exists (it is not ours to drop)."""
    admin, name = _admin_url(url)
    if pg_exists(url):
        raise click.ClickException(f"database {name} exists already: drop it or choose another --pg-url")
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def pg_drop(url: str) -> bool:
    """Drop the bench database (its connections closed by force); True when it is gone."""
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return not pg_exists(url)


def pg_info(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as con:
        out = {"version": str(con.execute("SHOW server_version").fetchone()[0])}  # type: ignore[index]
        for k in ("synchronous_commit", "fsync", "wal_level", "shared_buffers", "max_connections"):
            out[k] = str(con.execute(sql.SQL("SHOW {}").format(sql.Identifier(k))).fetchone()[0])  # type: ignore[index]
    return out


def pg_backend_cpu(dbname: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to ``dbname`` (their process titles name it)."""
    from bench.run import TICK, _stat_fields

    total = 0
    needle = f" {dbname} ".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            title = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and needle in title:
            f = _stat_fields(d)
            if f:
                total += int(f[11]) + int(f[12])
    return total / TICK


def session_alive(sid: int) -> list[int]:
    """Processes still in session ``sid`` (a stopped server's must be none)."""
    from bench.run import _stat_fields

    return [int(d) for d in os.listdir("/proc") if d.isdigit() and (f := _stat_fields(d)) and int(f[3]) == sid]


class BackendsBench(Bench):
    """bench/run.py's ``Bench`` pointed at one configuration at a time (``use``)."""

    def __init__(self, opts: dict[str, Any]) -> None:
        super().__init__(opts)
        self.pg_url: str = opts["pg_url"]
        self.pg_name = _admin_url(self.pg_url)[1]
        self.cfg: Config | None = None
        self.pg_created = False
        self.cfgs: list[Config] = []

    def use(self, cfg: Config) -> None:
        self.cfg, self.server = cfg, cfg.server
        self.cpu_server, self.cpu_client = cfg.cpu_server, cfg.cpu_client

    # -- seeding: SQLite through Bench.seed, then the same tenant into PostgreSQL ----------------
    def seed_pg(self) -> None:
        from graphdir import bootstrap
        from graphdir.auth.tokens import KeyRing
        from graphdir.settings import load_settings

        t = seed.make_tenant(self.o["scale"])  # deterministic: the same ids as the SQLite copy
        log(f"== seeding PostgreSQL: database {self.pg_name} (created; dropped at the end unless --keep)")
        pg_create(self.pg_url)
        self.pg_created = True  # ours from here on: dropped at the end (pg_create refuses an existing database)
        t0 = time.perf_counter()
        settings = load_settings(database_url=self.pg_url, env={})
        store = bootstrap.open_store(settings)
        store.open()
        try:
            store.put_meta("default_tenant", self.tenant_id)  # the same tenant id as in SQLite
            assert bootstrap.default_tenant(store, settings)["id"] == self.tenant_id
            bootstrap.default_app_id(store)
            KeyRing(store)
            timings = seed.load(store, self.tenant_id, t, log=log)
        finally:
            store.close()
        with psycopg.connect(self.pg_url, autocommit=True) as con:
            con.execute("VACUUM (ANALYZE)")  # planner statistics and the visibility map, as after any bulk load
        self.meta["seed_pg_s"] = round(time.perf_counter() - t0, 1)
        self.meta["seed_pg_detail"] = {k: round(v, 1) for k, v in timings.items()}
        log(f"   PostgreSQL seeded in {self.meta['seed_pg_s']} s (COPY + VACUUM ANALYZE)")

    def cases(self) -> list[Case]:
        return [c for c in super().cases() if c.name in CASES]

    # -- measuring: PostgreSQL's backend CPU beside graphdir's -----------------------------------
    def settle(self, quiet: float = 0.02, most: float = 15.0) -> float:
        """Wait until every bench server and the bench database's backends are idle (< ``quiet`` CPU
        seconds per 0.25 s): when wrk stops, up to 64 requests are still queued in the server it
        loaded (64 pages of 999 members take seconds), and they must not run during the next case,
        which may be another configuration's. Returns the seconds waited."""
        from bench.run import session_cpu

        sids = [c.server.sid for c in self.cfgs if c.server is not None and c.server.proc is not None]

        def busy() -> float:
            return sum(session_cpu(s) for s in sids) + pg_backend_cpu(self.pg_name)

        t0 = time.perf_counter()
        before = busy()
        while time.perf_counter() - t0 < most:
            time.sleep(0.25)
            now = busy()
            if now - before < quiet:
                break
            before = now
        return time.perf_counter() - t0

    def _wrk(self, case: Case, pool: str | None, skip: int, duration: int, conns: int) -> dict[str, Any]:
        self.settle()
        pg = self.cfg is not None and self.cfg.backend == "postgresql"
        d0 = pg_backend_cpu(self.pg_name) if pg else 0.0
        r = super()._wrk(case, pool, skip, duration, conns)
        r["db_cpu_s"] = pg_backend_cpu(self.pg_name) - d0 if pg else None
        return r

    # -- restoring: SQLite as bench/run.py does, PostgreSQL with psycopg -------------------------
    def _restore(self, case: Case, pool_name: str, skip: int, consumed: int) -> int:
        assert self.cfg is not None
        if self.cfg.backend == "sqlite":
            return super()._restore(case, pool_name, skip, consumed)
        if consumed <= 0:
            return 0
        time.sleep(1.0)  # the requests still in the server commit first
        pool = self.pools[pool_name]
        rows = pool.pairs[skip : skip + consumed]
        gs, ms = [g for g, _ in rows], [m for _, m in rows]
        with psycopg.connect(self.pg_url) as con:  # one transaction, committed on leaving the block
            if case.write == "remove":
                cur = con.execute(
                    "INSERT INTO members (tenant_id, group_id, member_id, member_type) "
                    "SELECT %s, g, m, %s FROM unnest(%s::text[], %s::text[]) AS t(g, m) ON CONFLICT DO NOTHING",
                    (self.tenant_id, pool.member_type, gs, ms))
            else:
                cur = con.execute(
                    "DELETE FROM members AS x USING unnest(%s::text[], %s::text[]) AS t(g, m) "
                    "WHERE x.tenant_id = %s AND x.group_id = t.g AND x.member_id = t.m", (gs, ms, self.tenant_id))
            return int(cur.rowcount)

    def run_case(self, case: Case, rnd: int) -> dict[str, Any]:
        r = super().run_case(case, rnd)
        assert self.cfg is not None
        r["config"] = self.cfg.name
        r["db_cpu_us"] = r["db_cpu_s"] / r["requests"] * 1e6 if r.get("db_cpu_s") is not None and r["requests"] else None
        return r


# ---------------------------------------------------------------------------------------------
# Summary, targets, report
# ---------------------------------------------------------------------------------------------
def summarize_all(cfgs: list[Config], cases: list[Case], runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per configuration, bench/run.py's summary (ratios to that server's own ceiling, round by round),
    plus req/s over the SQLite server's ceiling of the same round."""
    base = {r["round"]: r["rps"] for r in runs if r["config"] == cfgs[0].name and r["case"] == "ceiling"}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cfg in cfgs:
        mine = [r for r in runs if r["config"] == cfg.name]
        s = summarize(cases, mine)
        for name, row in s.items():
            rs = [r for r in mine if r["case"] == name]
            vs = [r["rps"] / base[r["round"]] for r in rs if base.get(r["round"])]
            row["ratio_base"] = med(vs) if vs else None
            db = [r["db_cpu_us"] for r in rs if r.get("db_cpu_us") is not None]
            row["db_cpu_us"] = med(db) if db else None
            row["wraps"] = sum(r.get("wraps", 0) for r in rs)
        out[cfg.name] = s
    return out


def targets(s: dict[str, dict[str, dict[str, Any]]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 10's targets for remove-member, and the commit check of every write run."""
    t: list[dict[str, Any]] = []

    def add(name: str, bar: str, measured: str, met: bool | None) -> None:
        t.append({"target": name, "bar": bar, "measured": measured, "met": met})

    for cfg, bar in (("postgresql/1", 0.40), ("sqlite/1", 0.28)):
        r = s.get(cfg, {}).get("remove")
        if r and r["ratio"] is not None:
            add(f"{cfg}: remove vs its own ceiling", f">= {bar:.2f}x", f"{r['ratio']:.2f}x ({r['rps']:,.0f} req/s)", r["ratio"] >= bar)
    a, b = s.get("postgresql/2", {}).get("remove"), s.get("sqlite/1", {}).get("remove")
    if a and b:
        per_round = {r["round"]: r["rps"] for r in runs if r["config"] == "sqlite/1" and r["case"] == "remove"}
        wins = [r["rps"] > per_round[r["round"]] for r in runs
                if r["config"] == "postgresql/2" and r["case"] == "remove" and r["round"] in per_round]
        add("postgresql/2 removals/s vs sqlite/1 removals/s", "more", f"{a['rps']:,.0f} vs {b['rps']:,.0f} req/s "
            f"({a['rps'] / b['rps']:.2f}x; more in {sum(wins)} of {len(wins)} rounds)", a["rps"] > b["rps"])
    for cfg, rows in s.items():
        c, g = rows.get("check_member_groups"), rows.get("get_group")
        if c and g and c["cpu_us"] and g["cpu_us"]:
            ratio = c["cpu_us"] / g["cpu_us"]
            add(f"{cfg}: checkMemberGroups (20 groups, 10 levels) vs GET /groups/{{id}}, graphdir CPU per request", "<= 2x",
                f"{ratio:.2f}x ({c['cpu_us']:,.0f} vs {g['cpu_us']:,.0f} µs; {c['rps']:,.0f} vs {g['rps']:,.0f} req/s)", ratio <= 2)
    bad = [f"{c}/{n}" for c, rows in s.items() for n, r in rows.items()
           if r["errors"] or (r["commit_check"] is False) or (r["wraps"] and r["commit_check"] is not None)]
    add("every response 2xx, every 2xx of a write committed, no pool wrapped (all configurations)", "all",
        "all" if not bad else "failed: " + ", ".join(bad), not bad)
    return t


def _f(x: float | None, big: float = 10) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:.2f}" if x < big else f"{x:,.0f}"


def table(s: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = ["| config | case | conns | req/s median [min–max] | × own ceiling | × sqlite/1 ceiling | p50 ms (median) "
             "| p99 ms (worst round) | graphdir CPU µs/req | PostgreSQL backends CPU µs/req | errors | commit check |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cfg, rows in s.items():
        for name, r in rows.items():
            rps = f"{r['rps']:,.0f} [{r['rps_min']:,.0f}–{r['rps_max']:,.0f}]" if r["n"] > 1 else f"{r['rps']:,.0f}"
            cc = "—" if r["commit_check"] is None else ("ok" if r["commit_check"] else "**FAILED**")
            if r["wraps"] and r["commit_check"] is not None:
                cc += " (pool wrapped)"
            lines.append(f"| {cfg} | {r['title']} (`{name}`) | {r['conns']} | {rps} | {_f(r['ratio'])} | {_f(r['ratio_base'])} "
                         f"| {_f(r['p50_ms'])} | {_f(r['p99_ms'])} | {_f(r['cpu_us'], 0)} | {_f(r['db_cpu_us'], 0)} | {r['errors']} | {cc} |")
    return "\n".join(lines)


def targets_md(t: list[dict[str, Any]]) -> str:
    lines = ["| target | bar | measured | met |", "|---|---|---|---|"]
    lines += [f"| {x['target']} | {x['bar']} | {x['measured']} | {'met' if x['met'] else '**missed**'} |" for x in t]
    return "\n".join(lines)


def report_md(meta: dict[str, Any], s: dict[str, dict[str, dict[str, Any]]], t: list[dict[str, Any]]) -> str:
    m, sc, pg = meta["machine"], meta["scale"], meta["postgresql"]
    head = (
        f"Run of {meta['started']} ({meta['rounds']} interleaved round{'s' if meta['rounds'] != 1 else ''} of {meta['duration_s']} s "
        f"after {meta['warmup_s']} s warm-up, "
        f"{meta['connections']} connections; medians, except p99: the worst round's). Machine: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}; graphdir {m.get('git', '?')}; Python {m['python']}, SQLite {m['sqlite']}, "
        f"PostgreSQL {pg['version']} on the same box (synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']}, "
        f"shared_buffers={pg['shared_buffers']}), granian {m['granian']}, {m['wrk']}. "
        f"Tenant (the same in both databases): {sc['total_users']:,} users, {sc['groups']:,} groups of {sc['group_size']} (+ nesting), "
        f"one group of {sc['big']:,} members (SQLite bulk load {meta.get('seed_graphdir_s', '?')} s, PostgreSQL COPY + VACUUM ANALYZE "
        f"{meta.get('seed_pg_s', '?')} s).\n\n"
        "Ratios: `× own ceiling` = the case's req/s over the trivial 204 route (`ceiling`) served by the **same server in the same "
        "round** (median over rounds); `× sqlite/1 ceiling` = req/s over the sqlite/1 server's ceiling of the same round, so the "
        "configurations compare as plain req/s. graphdir CPU = every process of the server's session; PostgreSQL backends CPU = the "
        "backends connected to the bench database (not its WAL writer, checkpointer or background writer). "
        "Before every run the bench waits until every server and the database's backends are idle.\n\n"
        "Placement: " + "; ".join(f"**{k}**: {v}" for k, v in meta["placement"].items()) + "."
    )
    return f"{head}\n\n{table(s)}\n\nTargets (issues 10 and 11):\n\n{targets_md(t)}\n"


def update_readme(md: str) -> None:
    """Put the report between the bench:backends markers of bench/README.md."""
    text = README.read_text()
    if MARK_START in text and MARK_END in text:
        pre, rest = text.split(MARK_START, 1)
        _, post = rest.split(MARK_END, 1)
        README.write_text(f"{pre}{MARK_START}\n{md}\n{MARK_END}{post}")
    else:
        log("bench/README.md has no bench:backends markers: not updated")


# ---------------------------------------------------------------------------------------------
@click.command()
@click.option("--rounds", type=int, default=3, show_default=True, help="Interleaved rounds.")
@click.option("--duration", type=int, default=5, show_default=True, help="Seconds per measured run.")
@click.option("--warmup", type=int, default=1, show_default=True, help="Seconds of warm-up before each run.")
@click.option("--connections", type=int, default=64, show_default=True)
@click.option("--users", type=int, default=seed.QUICK.users, show_default=True, help="Regular users (each in one group of --group-size).")
@click.option("--groups", type=int, default=seed.QUICK.groups, show_default=True, help="Regular groups.")
@click.option("--group-size", type=int, default=seed.QUICK.group_size, show_default=True)
@click.option("--big", type=int, default=seed.QUICK.big, show_default=True, help="Members of the large group (the $top=999 page; >= 1000).")
@click.option("--pg-url", default=f"postgresql://postgres@127.0.0.1:5432/gd_bench_backends_{os.getpid()}", show_default="…/gd_bench_backends_<pid>",
              help="The throwaway PostgreSQL database: created (it must not exist), seeded, dropped at the end.")
@click.option("--no-pin", is_flag=True, help="Pin nothing (by default the 1-worker servers run on core 0 and wrk on core 1).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=BENCH / "work-backends", show_default=True)
@click.option("--keep", is_flag=True, help="Keep the SQLite work directory and the PostgreSQL database afterwards.")
@click.option("--write-readme", is_flag=True, help="Put the table into bench/README.md (between the bench:backends markers).")
def main(**o: Any) -> None:
    """SQLite (1 worker) and PostgreSQL (1 and 2 workers) side by side, in one run."""
    if o["big"] < 1000:
        raise click.UsageError("--big must be at least 1000 (the $top=999 page needs a next page)")
    nest = min(seed.FULL.nest_parents, max(1, (o["groups"] - 1) // 2))  # the binary tree, 10 levels deep when there are groups enough
    o.update(scale=seed.Scale(users=o["users"], groups=o["groups"], group_size=o["group_size"], big=o["big"], nest_parents=nest),
             quick=True, no_ldap=True, cases=",".join(CASES[1:]))
    if shutil.which("wrk") is None:
        raise click.ClickException("wrk is missing: run bench/setup.sh (or apt-get install wrk)")
    started = time.time()
    b = BackendsBench(o)
    cfgs = b.cfgs = configs(not o["no_pin"])

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    RESULTS.mkdir(exist_ok=True)
    try:
        b.meta.update(machine=machine(), started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), rounds=o["rounds"],
                      duration_s=o["duration"], warmup_s=o["warmup"], connections=o["connections"],
                      placement={c.name: c.placement for c in cfgs})
        b.seed()
        b.seed_pg()
        b.meta["postgresql"] = pg_info(b.pg_url)
        urls = {"sqlite": f"sqlite:///{b.db}", "postgresql": b.pg_url}
        for cfg in cfgs:
            cfg.server = Server(urls[cfg.backend], free_port(), b.work, cfg.cpu_server, cfg.workers, name=f"serve-{cfg.name.replace('/', '-')}")
            cfg.server.start()
            log(f"== {cfg.name}: graphdir serve --workers {cfg.workers} on 127.0.0.1:{cfg.server.port} "
                f"(pid {cfg.server.sid}, workers {cfg.server.worker_pids()}); placement: {cfg.placement}")
        cases = b.cases()
        for c in cases:
            if c.conns == 64:  # the cases with a connection count of their own keep it
                c.conns = o["connections"]
        for rnd in range(o["rounds"]):
            order = cfgs[rnd % len(cfgs):] + cfgs[: rnd % len(cfgs)]
            log(f"== round {rnd + 1}/{o['rounds']}: {', '.join(c.name for c in order)}")
            for cfg in order:
                b.use(cfg)
                for c in cases:
                    r = b.run_case(c, rnd)
                    b.results.append(r)
                    extra = f" committed {r['committed']}" if "committed" in r else ""
                    if r.get("wraps") and c.write:
                        extra += "  POOL EXHAUSTED (requests repeated): use a shorter --duration or a larger scale"
                    log(f"   {cfg.name:13s} {c.name:11s} {r['rps']:>10,.1f} req/s  p50 {r['p50_us'] / 1000:8.2f} ms  "
                        f"p99 {r['p99_us'] / 1000:8.2f} ms  errors {r.get('errors', 0)}{extra}")
        summary = summarize_all(cfgs, cases, b.results)
        tg = targets(summary, b.results)
        b.meta["elapsed_s"] = round(time.time() - started, 1)
        md = report_md(b.meta, summary, tg)
        data = {"meta": b.meta, "summary": summary, "targets": tg, "runs": b.results, "markdown": md}
        (RESULTS / "backends-latest.json").write_text(json.dumps(data, indent=1, default=str))
        (RESULTS / "backends-latest.md").write_text(md)
        log("")
        log(md)
        log(f"(written to {RESULTS.relative_to(ROOT)}/backends-latest.json and backends-latest.md; {b.meta['elapsed_s']:.0f} s in all)")
        if o["write_readme"]:
            update_readme(md)
    finally:
        for cfg in cfgs:
            if cfg.server is not None:
                sid = cfg.server.sid if cfg.server.proc is not None else None
                cfg.server.stop()
                left = session_alive(sid) if sid else []
                log(f"== {cfg.name}: server stopped" + (f"; LEFT OVER: {left}" if left else ", no process left"))
        if b.pg_created and not o["keep"]:
            log(f"== PostgreSQL: database {b.pg_name} " + ("dropped" if pg_drop(b.pg_url) else "NOT dropped"))
        if not o["keep"] and b.work.exists():
            shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
