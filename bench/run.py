"""One command for graphdir's benchmarks: ``python -m bench.run [--quick]`` (see bench/README.md).

Seeds a tenant at scale through ``SqliteStore.bulk_load``, starts a live ``graphdir serve`` (via
bench/serve.py: the real command, with a bench-only trivial route added to the same app), loads the
same large group into a private OpenLDAP slapd, and drives every case with a C load generator
(wrk + bench/lua/pairs.lua for HTTP, bench/.build/ldapload for LDAP), 64 connections, valid tokens.
Cases run round-robin (interleaved) for ``--rounds`` rounds; the report gives medians, except p99,
which is the worst round's (a stall that hits one round in three must show).

Placement: the server side (graphdir's granian process, the raw-sqlite process, slapd) is pinned to
core 0, the load generators to core 1 (``--no-pin`` turns that off).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua" / "pairs.lua"
LDAPLOAD = BENCH / ".build" / "ldapload"
RESULTS = BENCH / "results"
README = BENCH / "README.md"
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# CPU accounting from /proc
# ---------------------------------------------------------------------------------------------
def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def session_cpu(sid: int) -> float:
    """CPU seconds (user+system) of every live process in session ``sid`` (the server and its workers)."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        f = _stat_fields(d)
        if f and int(f[3]) == sid:  # field 6 (session) is index 3 after the command name
            total += int(f[11]) + int(f[12])
    return total / TICK


def pid_cpu(pid: int) -> float:
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / TICK if f else 0.0


def box_busy() -> float:
    """Busy CPU seconds of the whole box (all cores) from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / TICK


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------------
# Tools and machine
# ---------------------------------------------------------------------------------------------
def ensure_tools() -> None:
    missing = [t for t in ("wrk", "ldapmodify") if shutil.which(t) is None]
    if not Path("/usr/sbin/slapd").exists():
        missing.append("slapd")
    if not LDAPLOAD.exists():
        missing.append("ldapload")
    if missing:
        log(f"== setup: missing {', '.join(missing)}: running bench/setup.sh")
        subprocess.run(["bash", str(BENCH / "setup.sh")], check=True, timeout=900)


def _cmd(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    from importlib.metadata import version

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except Exception:  # noqa: BLE001
            return "?"

    from bench import ldap

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "kernel": platform.release(),
        "os": _cmd(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "graphdir": v("graphdir"), "granian": v("granian"), "uvloop": v("uvloop"), "starlette": v("starlette"), "orjson": v("orjson"),
        "wrk": _cmd(["sh", "-c", "wrk -v 2>&1 | head -1"]).split(" [")[0], "slapd": ldap.slapd_version(),
        "libldap_client": "libldap " + ldap.slapd_version().split()[-1] if ldap.slapd_version() != "?" else "?",
        "git": _cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        + (" + uncommitted changes in src/" if _cmd(["git", "-C", str(ROOT), "status", "--porcelain", "src"]) else ""),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


# ---------------------------------------------------------------------------------------------
# The live server
# ---------------------------------------------------------------------------------------------
class Server:
    """``python -m bench.serve`` = ``graphdir serve`` with the bench factory; its own session, pinned.

    ``db_url`` is a database URL (``sqlite:///path`` or ``postgresql://…``); ``workers`` goes to
    ``graphdir serve --workers`` (which refuses more than 1 on SQLite).
    """

    def __init__(self, db_url: str, port: int, workdir: Path, cpu: str | None, workers: int = 1, name: str = "serve") -> None:
        self.db_url, self.port, self.cpu, self.workers = db_url, port, cpu, workers
        self.out = workdir / f"{name}.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self) -> None:
        env = dict(os.environ, GRAPHDIR_BENCH_NOOP="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        cmd = [sys.executable, "-m", "bench.serve", "--port", str(self.port), "--db", self.db_url, "--workers", str(self.workers)]
        if self.cpu is not None:
            cmd = ["taskset", "-c", self.cpu, *cmd]
        with open(self.out, "wb") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and not self.token:
            if self.proc.poll() is not None:
                raise RuntimeError(f"graphdir serve exited: {self.out.read_text()[-2000:]}")
            m = re.search(r"^token:\s+(\S+)", self.out.read_text(), re.M)
            if m:
                self.token = m.group(1)
            else:
                time.sleep(0.2)
        wait_port(self.port, 120, self.proc)

    @property
    def sid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        pids = []
        for d in os.listdir("/proc"):
            f = _stat_fields(d) if d.isdigit() else None
            if f and int(f[3]) == self.sid and int(d) != self.sid:
                pids.append(int(d))
        return sorted(pids)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.sid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.sid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # granian's worker is in the same session: make sure nothing of it is left
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.sid, signal.SIGKILL)
        self.proc = None


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    title: str
    side: str  # ceiling | graphdir | storage | slapd
    kind: str  # http | raw | ldap | ldapcli
    method: str = "GET"
    path: str = ""
    body: str | None = None
    pool: str | None = None  # pool name; None = fixed path
    skip: int = 0  # first pool line used by round 0
    per_round: int = 0  # >0: each round starts this many lines further on (pools that are not restored)
    warm_pool: str | None = None
    warm_skip: int = 0
    conns: int = 64
    write: str | None = None  # "remove" | "add": restore afterwards and check commits
    ldap_mode: str = ""
    max_ops: int = -1
    raw_mode: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pool:
    name: str
    path: Path
    pairs: list[tuple[str, str]]
    member_type: str = "user"


class Bench:
    def __init__(self, opts: dict[str, Any]) -> None:
        self.o = opts
        self.work: Path = opts["workdir"]
        self.cpu_server = None if opts["no_pin"] else "0"
        self.cpu_client = None if opts["no_pin"] else "1"
        self.server: Server | None = None
        self.slapd: Any = None
        self.pools: dict[str, Pool] = {}
        self.tenant_id = ""
        self.big_id = ""
        self.results: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}

    # -- seeding ------------------------------------------------------------------------------
    def seed(self) -> None:
        from bench import ldap, seed
        from graphdir import bootstrap
        from graphdir.auth.tokens import KeyRing
        from graphdir.odata.options import encode_skiptoken
        from graphdir.settings import load_settings

        scale = self.o.get("scale") or (seed.QUICK if self.o["quick"] else seed.FULL)
        self.meta["scale"] = seed.scale_dict(scale)
        self.work.mkdir(parents=True, exist_ok=True)
        db = self.work / "graphdir.db"
        t = seed.make_tenant(scale)
        self.big_id = t.big_id

        # slapd's copy of the large group loads in parallel (slapadd is a separate process)
        slapadd: subprocess.Popen[bytes] | None = None
        if not self.o["no_ldap"]:
            self.slapd = ldap.Slapd(self.work / "slapd", self.o["ldap_port"] or free_port(), variant=self.o["slapd_config"])
            self.meta["slapd_config"] = ldap.describe(self.o["slapd_config"])
            self.slapd.configure()
            ldif = self.work / "group.ldif"
            t0 = time.perf_counter()
            with open(ldif, "w") as fh:
                fh.writelines(seed.iter_ldif(t, ldap.SUFFIX))
            log(f"== slapd: LDIF of {scale.big:,} users + one groupOfNames with {scale.big:,} members written "
                f"in {time.perf_counter() - t0:.1f} s; slapadd -q running")
            self._slapadd_t0 = time.perf_counter()
            slapadd = subprocess.Popen(["/usr/sbin/slapadd", "-q", "-f", str(self.slapd.conf), "-l", str(ldif)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        log(f"== seeding graphdir: {scale.total_users:,} users, {scale.groups:,} groups of {scale.group_size} "
            f"(+ nesting), one group of {scale.big:,} members -> {db}")
        t0 = time.perf_counter()
        settings = load_settings(database_url=f"sqlite:///{db}", env={})
        store = bootstrap.open_store(settings)
        store.open()
        try:
            self.tenant_id = bootstrap.default_tenant(store, settings)["id"]
            bootstrap.default_app_id(store)
            KeyRing(store)  # the signing keys, as a first `graphdir serve` makes them (bench/profile_app.py needs them)
            timings = seed.load(store, self.tenant_id, t, log=log)
        finally:
            store.close()
        self.meta["seed_graphdir_s"] = round(time.perf_counter() - t0, 1)
        self.meta["seed_graphdir_detail"] = {k: round(v, 1) for k, v in timings.items()}
        self.meta["db_bytes"] = db.stat().st_size
        self.db = db
        log(f"   graphdir seeded in {self.meta['seed_graphdir_s']} s ({db.stat().st_size / 2**30:.2f} GiB)")

        # request pools
        pools = seed.pools(t)
        for name, pairs in pools.items():
            path = self.work / f"pool_{name}.txt"
            seed.write_pool(path, pairs)
            self.pools[name] = Pool(name, path, pairs, "group" if name == "remove_nested" else "user")
        self.deep_user, self.deep_groups = seed.deep_path(t)
        # checkMemberGroups asks about 20 groups: the 11 on the deep user's path and 9 it is not in
        others = [g for g in t.group_ids[scale.groups - 9 :] if g not in self.deep_groups]
        self.check_ids = (self.deep_groups + others)[:20]
        big_sorted = sorted(t.user_ids[: scale.big])
        self.depth = scale.big - 1000
        self.deep_token = encode_skiptoken((big_sorted[self.depth - 1],), None)

        if slapadd is not None:
            _, err = slapadd.communicate(timeout=1800)
            if slapadd.returncode != 0:
                raise RuntimeError(f"slapadd failed: {err.decode()[-2000:]}")
            self.meta["seed_slapd_s"] = round(time.perf_counter() - self._slapadd_t0, 1)
            log(f"   slapd loaded (slapadd -q) in {self.meta['seed_slapd_s']} s")
            (self.work / "group.ldif").unlink(missing_ok=True)
            from bench.ldap import user_dn

            big = self.pools["remove_big"].pairs
            n = len(big)
            self.ldap_dns = self.work / "ldap_dns.txt"
            with open(self.ldap_dns, "w") as fh:
                fh.writelines(user_dn(m) + "\n" for _, m in big)
            self.ldap_n = n

    # -- the case list ----------------------------------------------------------------------------
    def cases(self) -> list[Case]:
        big = self.big_id
        nb = len(self.pools["remove_big"].pairs)
        rm = "/v1.0/groups/{g}/members/{m}/$ref"
        add_body = '{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/{m}"}'
        d = f"{self.depth:,}"
        cases = [
            Case("ceiling", "trivial 204 route, same server (DELETE)", "ceiling", "http", "DELETE", "/bench/noop" + rm, pool="remove",
                 note="bench-only path in front of graphdir's app, same process: ASGI dispatch + Starlette Response(204)"),
            Case("ceiling_starlette", "trivial 204 route through Starlette's router, same server (DELETE)", "ceiling", "http", "DELETE",
                 "/bench/starlette" + rm, pool="remove",
                 note="context: the granian + Starlette ceiling (bench/README.md#design-measurements), the reference of the issue's 54 % prototype"),
            Case("ceiling_read", "trivial route + one SQLite point read on the loop", "ceiling", "http", "GET", "/bench/sqlread/x",
                 note="diagnostic: what a read on the event loop costs on this stack"),
            Case("remove", "remove member (groups of 10)", "graphdir", "http", "DELETE", rm, pool="remove",
                 warm_pool="remove_big", warm_skip=nb // 2, write="remove"),
            Case("remove_big", "remove member (1,000,000-member group)" if nb >= 1_000_000 else f"remove member ({nb:,}-member group)",
                 "graphdir", "http", "DELETE", rm, pool="remove_big", warm_pool="remove_big", warm_skip=nb // 2, write="remove"),
            Case("add", "add member (POST …/members/$ref)", "graphdir", "http", "POST", "/v1.0/groups/{g}/members/$ref", body=add_body,
                 pool="add", warm_pool="add", warm_skip=len(self.pools["add"].pairs) * 3 // 4, write="add"),
            Case("get_group", "GET /groups/{id}", "graphdir", "http", "GET", f"/v1.0/groups/{big}"),
            Case("list100_p0", "list members $top=100, first page", "graphdir", "http", "GET", f"/v1.0/groups/{big}/members?$top=100"),
            Case("list100_deep", f"list members $top=100 at depth {d}", "graphdir", "http", "GET",
                 f"/v1.0/groups/{big}/members?$top=100&$skiptoken={self.deep_token}"),
            Case("list999_p0", "list members $top=999, first page", "graphdir", "http", "GET", f"/v1.0/groups/{big}/members?$top=999"),
            Case("list999_deep", f"list members $top=999 at depth {d}", "graphdir", "http", "GET",
                 f"/v1.0/groups/{big}/members?$top=999&$skiptoken={self.deep_token}"),
            Case("member_check", "member-of check: GET /groups/{big}/members/{id}", "graphdir", "http", "GET",
                 "/v1.0/groups/{g}/members/{m}", pool="remove_big", skip=nb * 3 // 4),
            Case("remove_big_c1", "remove member (large group), 1 connection", "graphdir", "http", "DELETE", rm, pool="remove_big",
                 skip=nb // 4, conns=1, write="remove", note="latency of one removal with nothing to batch with"),
            # transitive membership (issue 11): the binary tree of bench/seed.py, 10 levels under its root
            Case("check_member_groups", "checkMemberGroups: one user against 20 groups (11 on its path, 10 levels)", "graphdir", "http",
                 "POST", f"/v1.0/users/{self.deep_user}/checkMemberGroups", body=json.dumps({"groupIds": self.check_ids}),
                 note="target: at most 2x the CPU of GET /groups/{id} (get_group)"),
            Case("transitive_member_of", "GET /users/{id}/transitiveMemberOf (12 groups, 10 levels)", "graphdir", "http", "GET",
                 f"/v1.0/users/{self.deep_user}/transitiveMemberOf"),
            Case("transitive_members", "GET /groups/{root}/transitiveMembers $top=100 (2,046 nested groups)", "graphdir", "http", "GET",
                 f"/v1.0/groups/{self.deep_groups[-1]}/transitiveMembers?$top=100", conns=8,
                 note="8 connections: a page takes tens of ms, and 64 queued ones would outlast wrk's 5 s timeout"),
            Case("remove_nested_c1", "remove a nested group from its parent, 1 connection", "graphdir", "http", "DELETE", rm,
                 pool="remove_nested", warm_pool="remove_big", warm_skip=nb // 3, conns=1, write="remove",
                 extra={"duration": 1}, note="1 s runs: the tree has 2,046 nested memberships to remove"),
            Case("raw_pk", "sqlite3 DELETE by primary key, 64/txn (storage ceiling)", "storage", "raw", pool="remove", write="remove",
                 raw_mode="pk", note="WAL, synchronous=FULL, one commit (fsync) per 64 deletes, no HTTP"),
            Case("raw_graphdir_sql", "sqlite3, graphdir's statements per removal, 64/txn", "storage", "raw", pool="remove", write="remove",
                 raw_mode="graphdir", note="SAVEPOINT, SELECT group + JSON decode, DELETE, INSERT change, RELEASE"),
            Case("raw_lean", "sqlite3, lean removal: DELETEs + change rows, 2 executemany/txn", "storage", "raw", pool="remove",
                 write="remove", raw_mode="lean", note="what a removal costs the storage with the group's flags cached"),
        ]
        if self.slapd is not None:
            n = self.ldap_n
            cases += [
                Case("ldap_remove_big_c1", "slapd: delete one member value (ldapmodify op), 1 connection", "slapd", "ldap", ldap_mode="delmember",
                     conns=1, max_ops=self.o["ldap_delete_ops"], skip=n // 8, per_round=self.o["ldap_delete_ops"] + 8,
                     note="same large group as a groupOfNames; members are not put back"),
                Case("ldap_member_check", "slapd: member-of check (compare member=<dn>)", "slapd", "ldap", ldap_mode="compare",
                     skip=n * 3 // 4, note="base-entry compare on the large group"),
                Case("ldap_member_search", "slapd: member-of check (base search (member=<dn>))", "slapd", "ldap", ldap_mode="search",
                     skip=n * 3 // 4),
                Case("ldapmodify_cli", "slapd: the ldapmodify CLI, one delete (process start + bind + modify)", "slapd", "ldapcli",
                     conns=1, skip=n // 8 - 64, per_round=1),
            ]
        only = self.o["cases"]
        if only:
            wanted = set(only.split(",")) | {"ceiling"}
            cases = [c for c in cases if c.name in wanted]
        return cases

    # -- running one case -----------------------------------------------------------------------
    def _wrk(self, case: Case, pool: str | None, skip: int, duration: int, conns: int) -> dict[str, Any]:
        assert self.server is not None
        env = dict(os.environ, TOKEN=self.server.token, METHOD=case.method, PATH_TMPL=case.path, SKIP=str(skip),
                   POOL=str(self.pools[pool].path) if pool else "")
        if case.body:
            env["BODY_TMPL"] = case.body
        else:
            env.pop("BODY_TMPL", None)
        cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout=5s", "-s", str(LUA), f"http://127.0.0.1:{self.server.port}"]
        if self.cpu_client is not None:
            cmd = ["taskset", "-c", self.cpu_client, *cmd]
        s0, c0, b0, t0 = session_cpu(self.server.sid), children_cpu(), box_busy(), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
        s1, c1, b1, t1 = session_cpu(self.server.sid), children_cpu(), box_busy(), time.perf_counter()
        m = re.search(r"BENCHJSON (\{.*\})", out.stdout)
        if not m:
            raise RuntimeError(f"wrk gave no result for {case.name}: {out.stdout[-800:]} {out.stderr[-800:]}")
        r: dict[str, Any] = json.loads(m.group(1))
        r["errors"] = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
        r["server_cpu_s"], r["client_cpu_s"], r["box_cpu_s"], r["wall_s"] = s1 - s0, c1 - c0, b1 - b0, t1 - t0
        return r

    def _ldap(self, case: Case, skip: int, duration: int) -> dict[str, Any]:
        from bench import ldap

        cmd = [str(LDAPLOAD), "-H", self.slapd.uri, "-D", ldap.ROOTDN, "-w", ldap.ROOTPW, "-g", ldap.GROUP_DN, "-f", str(self.ldap_dns),
               "-m", case.ldap_mode, "-c", str(case.conns), "-d", str(duration), "-n", str(case.max_ops), "-s", str(skip)]
        if self.cpu_client is not None:
            cmd = ["taskset", "-c", self.cpu_client, *cmd]
        pid = self.slapd.proc.pid
        s0, c0, b0, t0 = pid_cpu(pid), children_cpu(), box_busy(), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 600)
        s1, c1, b1, t1 = pid_cpu(pid), children_cpu(), box_busy(), time.perf_counter()
        m = re.search(r"BENCHJSON (\{.*\})", out.stdout)
        if not m:
            raise RuntimeError(f"ldapload gave no result for {case.name}: {out.stdout[-800:]} {out.stderr[-800:]}")
        r: dict[str, Any] = json.loads(m.group(1))
        r["server_cpu_s"], r["client_cpu_s"], r["box_cpu_s"], r["wall_s"] = s1 - s0, c1 - c0, b1 - b0, t1 - t0
        return r

    def _ldapcli(self, case: Case, skip: int) -> dict[str, Any]:
        from bench import ldap

        dn = self.ldap_dns.read_text().splitlines()[skip] if skip < self.ldap_n else ""
        ldif = self.work / "one_delete.ldif"
        ldif.write_text(f"dn: {ldap.GROUP_DN}\nchangetype: modify\ndelete: member\nmember: {dn}\n-\n\n")
        cmd = ["ldapmodify", "-x", "-H", self.slapd.uri, "-D", ldap.ROOTDN, "-w", ldap.ROOTPW, "-f", str(ldif)]
        if self.cpu_client is not None:
            cmd = ["taskset", "-c", self.cpu_client, *cmd]
        pid = self.slapd.proc.pid
        s0, c0, b0, t0 = pid_cpu(pid), children_cpu(), box_busy(), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        s1, c1, b1, t1 = pid_cpu(pid), children_cpu(), box_busy(), time.perf_counter()
        lat = (t1 - t0) * 1e6
        return {"requests": 1, "duration_us": lat, "consumed": 1, "errors": int(out.returncode != 0), "p50_us": lat, "p90_us": lat,
                "p99_us": lat, "p999_us": lat, "lat_max_us": lat, "server_cpu_s": s1 - s0, "client_cpu_s": c1 - c0,
                "box_cpu_s": b1 - b0, "wall_s": t1 - t0}

    def _raw(self, case: Case, duration: int) -> dict[str, Any]:
        pool = self.pools[case.pool or "remove"]
        cmd = [sys.executable, "-m", "bench.rawsqlite", "--db", str(self.db), "--tenant", self.tenant_id, "--pool", str(pool.path),
               "--duration", str(duration), "--batch", str(self.o["connections"]), "--mode", case.raw_mode]
        if self.cpu_server is not None:
            cmd = ["taskset", "-c", self.cpu_server, *cmd]
        b0, t0 = box_busy(), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, cwd=ROOT)
        b1, t1 = box_busy(), time.perf_counter()
        m = re.search(r"BENCHJSON (\{.*\})", out.stdout)
        if not m:
            raise RuntimeError(f"rawsqlite gave no result: {out.stdout[-800:]} {out.stderr[-1500:]}")
        r: dict[str, Any] = json.loads(m.group(1))
        r.update(errors=0, server_cpu_s=r["cpu_s"], client_cpu_s=0.0, box_cpu_s=b1 - b0, wall_s=t1 - t0)
        return r

    def _restore(self, case: Case, pool_name: str, skip: int, consumed: int) -> int:
        """Undo a write run; returns how many of its rows had really changed (= committed writes).

        Waits first: when the load generator stops, up to 64 requests are still in the server, and
        their commits must land before the restore or they would survive it.
        """
        if consumed <= 0:
            return 0
        time.sleep(1.0)
        pool = self.pools[pool_name]
        rows = pool.pairs[skip : skip + consumed]
        con = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("BEGIN IMMEDIATE")
            if case.write == "remove":
                cur = con.executemany("INSERT OR IGNORE INTO members VALUES (?,?,?,?)",
                                      [(self.tenant_id, g, m, pool.member_type) for g, m in rows])
            else:
                cur = con.executemany("DELETE FROM members WHERE tenant_id=? AND group_id=? AND member_id=?", [(self.tenant_id, g, m) for g, m in rows])
            changed = cur.rowcount
            if case.kind == "raw":  # the raw process's change records (never in graphdir's own sequence)
                con.execute("DELETE FROM changes WHERE tenant_id=?", (f"bench-raw:{self.tenant_id}",))
            con.execute("COMMIT")
        finally:
            con.close()
        return int(changed)

    def run_case(self, case: Case, rnd: int) -> dict[str, Any]:
        dur, warm = self.o["duration"], self.o["warmup"]
        skip = case.skip + rnd * case.per_round
        if case.kind == "http":
            if warm > 0:
                wp = case.warm_pool or case.pool
                wskip = case.warm_skip if case.warm_pool else skip
                wr = self._wrk(case, wp, wskip, warm, case.conns)
                if case.write and wp:
                    self._restore(case, wp, wskip, wr["consumed"])
            r = self._wrk(case, case.pool, skip, int(case.extra.get("duration", dur)), case.conns)
        elif case.kind == "raw":
            r = self._raw(case, dur)
        elif case.kind == "ldap":
            if warm > 0 and case.ldap_mode != "delmember":
                self._ldap(case, skip, warm)
            r = self._ldap(case, skip, dur if case.ldap_mode != "delmember" else self.o["ldap_delete_seconds"])
        else:
            r = self._ldapcli(case, skip)
        if case.write and case.pool and case.kind in ("http", "raw"):
            committed = self._restore(case, case.pool, skip, r["consumed"])
            r["committed"] = committed
            ok_responses = r["requests"] - r.get("errors", 0)
            r["commit_check"] = committed >= ok_responses and not r.get("wraps")
            time.sleep(0.5)  # let the server's checkpointer fold the restore into the database
        secs = r["duration_us"] / 1e6
        r.update(case=case.name, round=rnd, conns=case.conns, rps=r["requests"] / secs if secs else 0.0,
                 cpu_us=r["server_cpu_s"] / r["requests"] * 1e6 if r["requests"] else None,
                 client_cpu_us=r["client_cpu_s"] / r["requests"] * 1e6 if r["requests"] else None,
                 server_cores=r["server_cpu_s"] / r["wall_s"], client_cores=r["client_cpu_s"] / r["wall_s"],
                 other_cores=max(0.0, (r["box_cpu_s"] - r["server_cpu_s"] - r["client_cpu_s"]) / r["wall_s"]))
        return r

    # -- profiling ---------------------------------------------------------------------------------
    def profile(self, names: list[str]) -> dict[str, Any]:
        """py-spy on the server worker during one extra (unreported) run of each case."""
        assert self.server is not None
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        found: dict[str, Any] = {}
        cases = {c.name: c for c in self.cases()}
        for name in names:
            case = cases.get(name)
            if case is None or case.kind != "http":
                continue
            worker = self.server.worker_pids()[-1]
            raw = RESULTS / f"profile-{name}.txt"
            # a write case's pool is restored after every run but holds only so many fresh lines:
            # profile it as long as a measured run, so that it never wraps round to 404s/400s
            dur = self.o["duration"] + 2 if case.write else max(12, self.o["duration"])
            skip = case.skip + 7 * case.per_round
            res: dict[str, Any] = {}

            def load(case: Case = case, skip: int = skip, dur: int = dur, res: dict[str, Any] = res) -> None:
                res.update(self._wrk(case, case.pool, skip, dur, case.conns))

            th = threading.Thread(target=load)
            th.start()
            time.sleep(1.0)
            cmd = [pyspy, "record", "-p", str(worker), "-d", str(dur - 2), "-r", "250", "--nonblocking", "--threads", "--gil",
                   "--format", "raw", "-o", str(raw)]
            if self.cpu_client is not None:
                cmd = ["taskset", "-c", self.cpu_client, *cmd]
            subprocess.run(cmd, capture_output=True, timeout=dur + 30)
            th.join()
            if case.write:
                self._restore(case, case.pool or "", skip, res.get("consumed", 0))
            found[name] = summarize_profile(raw)
            found[name]["wraps"] = res.get("wraps", 0)
            note = f"; the pool wrapped {res['wraps']}x: repeated requests, not representative" if res.get("wraps") else ""
            log(f"   profile {name}: {raw.relative_to(ROOT)} ({found[name]['samples']} samples{note})")
        return found


def summarize_profile(path: Path, top: int = 30) -> dict[str, Any]:
    """Shares of py-spy's folded stacks (``--gil``: samples of the thread holding the GIL, i.e. Python CPU).

    ``inclusive`` counts a request-path frame (graphdir, Starlette, the writer) once per sample it appears
    in; ``self`` is the innermost frame. Percentages are of all GIL-holding samples.
    """
    from collections import Counter

    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0}
    skip = ("granian/server", "graphdir/cli.py", "bench/serve.py", "click/", "runpy", "multiprocessing/")
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, n_s = line.rpartition(" ")
        n = int(n_s)
        frames = stack.split(";")
        total += n
        name = frames[0].split(": ")[-1] if ": " in frames[0] else "native (granian/Rust)"
        threads[name] += n
        self_c[frames[-1]] += n
        for f in set(frames[1:]):
            if ("graphdir/" in f or "starlette/" in f or "asyncio/" in f or "uuid" in f or "urllib" in f) and not any(k in f for k in skip):
                incl[f] += n

    def pct(c: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(f, round(v / total * 100, 1)) for f, v in c.most_common(k)]

    return {"samples": total, "threads": pct(threads, 8), "self": pct(self_c, top), "inclusive": pct(incl, top)}


# ---------------------------------------------------------------------------------------------
# Summary, targets, report
# ---------------------------------------------------------------------------------------------
def med(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def summarize(cases: list[Case], runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ceil_by_round = {r["round"]: r["rps"] for r in runs if r["case"] == "ceiling"}
    out: dict[str, dict[str, Any]] = {}
    for c in cases:
        rs = [r for r in runs if r["case"] == c.name]
        if not rs:
            continue
        ratios = [r["rps"] / ceil_by_round[r["round"]] for r in rs if ceil_by_round.get(r["round"])]
        out[c.name] = {
            "title": c.title, "side": c.side, "conns": c.conns, "n": len(rs), "note": c.note,
            "rps": med([r["rps"] for r in rs]), "rps_min": min(r["rps"] for r in rs), "rps_max": max(r["rps"] for r in rs),
            "ratio": med(ratios) if ratios else None,
            # p99: the WORST round's, not the median (a stall that hits one round in three is a stall)
            "p50_ms": med([r["p50_us"] / 1000 for r in rs]), "p99_ms": max(r["p99_us"] / 1000 for r in rs),
            "p99_rounds_ms": [round(r["p99_us"] / 1000, 1) for r in rs],
            "cpu_us": med([r["cpu_us"] for r in rs if r["cpu_us"] is not None]),
            "client_cores": med([r["client_cores"] for r in rs]), "other_cores": med([r["other_cores"] for r in rs]),
            "errors": sum(r.get("errors", 0) for r in rs), "requests": sum(r["requests"] for r in rs),
            "commit_check": all(r.get("commit_check", True) for r in rs) if c.write else None,
        }
    return out


def targets(s: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = []

    def add(name: str, bar: str, measured: str, met: bool | None, why: str = "") -> None:
        t.append({"target": name, "bar": bar, "measured": measured, "met": met, "note": why})

    for case in ("remove", "add"):
        r = s.get(case)
        if r and r["ratio"] is not None:
            add(f"{case}: throughput vs the trivial endpoint", ">= 0.40x", f"{r['ratio']:.2f}x ({r['rps']:,.0f} req/s)", r["ratio"] >= 0.40)
            st = s.get("ceiling_starlette")
            if st and st["rps"]:
                add(f"{case}: throughput vs a Starlette-routed trivial endpoint (context, not the target)", "(0.54x prototype)",
                    f"{r['rps'] / st['rps']:.2f}x (of {st['rps']:,.0f} req/s)", None)
            rounds = ", ".join(f"{x:.1f}" for x in r["p99_rounds_ms"])
            if case == "remove":
                add(f"{case}: p99 at {r['conns']} connections, every round", "<= 30 ms in every round",
                    f"worst {r['p99_ms']:.1f} ms (rounds: {rounds})", r["p99_ms"] <= 30)
            else:
                add(f"{case}: p99 at {r['conns']} connections, worst round", "< 50 ms",
                    f"worst {r['p99_ms']:.1f} ms (rounds: {rounds})", r["p99_ms"] < 50)
            add(f"{case}: every 2xx committed (synchronous=FULL; rows checked after the run)", "all",
                "all" if r["commit_check"] and r["errors"] == 0 else f"check failed / {r['errors']} errors", bool(r["commit_check"]) and r["errors"] == 0)
    a, b = s.get("list999_p0"), s.get("list999_deep")
    if a and b:
        ratio = max(a["cpu_us"], b["cpu_us"]) / min(a["cpu_us"], b["cpu_us"])
        measured = f"{ratio:.2f}x ({a['cpu_us'] / 1000:.1f} vs {b['cpu_us'] / 1000:.1f} ms)"
        add("$top=999 page: deep vs first (server CPU per page)", "<= 1.5x", measured, ratio <= 1.5)
        worst = max(a["cpu_us"], b["cpu_us"]) / 1000
        add("$top=999 page: server time (CPU per page)", "< 10 ms", f"{worst:.1f} ms", worst < 10)
    a, b = s.get("remove"), s.get("remove_big")
    if a and b:
        ratio = max(a["cpu_us"], b["cpu_us"]) / min(a["cpu_us"], b["cpu_us"])
        rr = max(a["rps"], b["rps"]) / min(a["rps"], b["rps"])
        add("remove from the large group vs a 10-member group", "<= 1.5x", f"CPU/req {ratio:.2f}x, req/s {rr:.2f}x", ratio <= 1.5 and rr <= 1.5)
    g, lr = s.get("remove_big_c1"), s.get("ldap_remove_big_c1")
    if g and lr:
        add("beats slapd: remove one member from the large group (1 connection)", "graphdir faster",
            f"graphdir p50 {g['p50_ms']:.2f} ms / {g['rps']:,.0f} per s vs slapd p50 {lr['p50_ms']:.1f} ms / {lr['rps']:,.1f} per s",
            g["rps"] > lr["rps"] and g["p50_ms"] < lr["p50_ms"])
    g, lc, ls = s.get("member_check"), s.get("ldap_member_check"), s.get("ldap_member_search")
    best = max([x for x in (lc, ls) if x], key=lambda x: x["rps"], default=None)
    if g and best:
        add("beats slapd: member-of check on the large group (64 connections)", "graphdir faster",
            f"graphdir {g['rps']:,.0f}/s p99 {g['p99_ms']:.1f} ms vs slapd best {best['rps']:,.0f}/s p99 {best['p99_ms']:.1f} ms",
            g["rps"] > best["rps"])
    c, gg = s.get("check_member_groups"), s.get("get_group")
    if c and gg and c["cpu_us"] and gg["cpu_us"]:
        ratio = c["cpu_us"] / gg["cpu_us"]
        add("checkMemberGroups (20 groups, 10 levels) vs GET /groups/{id}: server CPU per request", "<= 2x",
            f"{ratio:.2f}x ({c['cpu_us']:,.0f} vs {gg['cpu_us']:,.0f} µs; {c['rps']:,.0f} vs {gg['rps']:,.0f} req/s)", ratio <= 2)
    return t


def fmt_rps(r: dict[str, Any]) -> str:
    if r["n"] > 1:
        return f"{r['rps']:,.0f} [{r['rps_min']:,.0f}–{r['rps_max']:,.0f}]"
    return f"{r['rps']:,.0f}"


def table(s: dict[str, dict[str, Any]]) -> str:
    lines = ["| case | side | conns | req/s median [min–max] | × ceiling | p50 ms (median) | p99 ms (worst round) "
             "| server CPU µs/req | client cores | other cores | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in s.items():
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        cpu = f"{r['cpu_us']:,.0f}" if r["cpu_us"] == r["cpu_us"] else "—"
        rps = fmt_rps(r) if r["rps"] >= 10 else f"{r['rps']:.2f}"
        p50 = f"{r['p50_ms']:.2f}" if r["p50_ms"] < 10 else f"{r['p50_ms']:,.0f}"
        p99 = f"{r['p99_ms']:.2f}" if r["p99_ms"] < 10 else f"{r['p99_ms']:,.0f}"
        lines.append(f"| {r['title']} (`{name}`) | {r['side']} | {r['conns']} | {rps} | {ratio} | {p50} | {p99} | {cpu} "
                     f"| {r['client_cores']:.2f} | {r['other_cores']:.2f} | {r['errors']} |")
    return "\n".join(lines)


def targets_md(t: list[dict[str, Any]]) -> str:
    lines = ["| target | bar | measured | met |", "|---|---|---|---|"]
    for x in t:
        met = "yes" if x["met"] else ("**no**" if x["met"] is False else "—")
        lines.append(f"| {x['target']} | {x['bar']} | {x['measured']} | {met} |")
    return "\n".join(lines)


def report_md(meta: dict[str, Any], s: dict[str, dict[str, Any]], t: list[dict[str, Any]]) -> str:
    m = meta["machine"]
    sc = meta["scale"]
    head = (
        f"Run of {meta['started']} ({meta['mode']}, {meta['rounds']} interleaved rounds of {meta['duration_s']} s after {meta['warmup_s']} s warm-up; "
        f"medians, except p99: the worst round's). Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}; "
        f"graphdir {m.get('git', '?')}; Python {m['python']}, SQLite {m['sqlite']}, "
        f"granian {m['granian']} (event loop: uvloop {m.get('uvloop', '?')}), Starlette {m['starlette']}; "
        f"{m['wrk']}; OpenLDAP {m['slapd']} "
        f"(mdb, {meta.get('slapd_config', 'not run')}). "
        f"Tenant: {sc['total_users']:,} users, {sc['groups']:,} groups of {sc['group_size']} (+ nesting), one group of {sc['big']:,} members "
        f"(graphdir bulk load {meta.get('seed_graphdir_s', '?')} s, slapadd {meta.get('seed_slapd_s', '—')} s). "
        f"Placement: {meta['placement']}. Clients: wrk 4.1 + bench/lua/pairs.lua (HTTP/1.1 keep-alive) for graphdir; "
        f"bench/ldapload (C, libldap async API, one bound connection per slot) for slapd."
    )
    return f"{head}\n\n{table(s)}\n\nTargets:\n\n{targets_md(t)}\n"


def update_readme(md: str) -> None:
    text = README.read_text()
    start, end = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        README.write_text(f"{pre}{start}\n{md}\n{end}{post}")


# ---------------------------------------------------------------------------------------------
@click.command()
@click.option("--quick", is_flag=True, help="Small scale (100k users, 5k groups of 10, a 100k-member group), 1 round, 3 s runs.")
@click.option("--rounds", type=int, default=None, help="Interleaved rounds (default 3; 1 with --quick).")
@click.option("--duration", type=int, default=None, help="Seconds per measured run (default 5; 3 with --quick).")
@click.option("--warmup", type=int, default=1, show_default=True, help="Seconds of warm-up before each HTTP run.")
@click.option("--connections", type=int, default=64, show_default=True)
@click.option("--cases", default="", help="Comma-separated subset of cases (the ceiling always runs).")
@click.option("--no-ldap", is_flag=True, help="Skip the slapd peer.")
@click.option("--no-pin", is_flag=True, help="Do not pin (server on core 0, clients on core 1).")
@click.option("--profile", "profile_cases", default="", help="After the rounds, py-spy the server during one extra run of these cases.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=BENCH / "work", show_default=True)
@click.option("--keep", is_flag=True, help="Keep the work directory (databases, pools) afterwards.")
@click.option("--port", type=int, default=0, help="graphdir port (default: a free one).")
@click.option("--ldap-port", type=int, default=0)
@click.option("--slapd-config", type=click.Choice(["indexed", "sortvals", "multival"]), default="indexed", show_default=True,
              help="slapd configuration (see bench/ldap.py).")
@click.option("--ldap-delete-ops", type=int, default=20, show_default=True, help="Most slapd deletes per round (they are slow on a large group).")
@click.option("--ldap-delete-seconds", type=int, default=10, show_default=True)
@click.option("--write-readme", is_flag=True, help="Put the table into bench/README.md (between the bench:latest markers).")
def main(**o: Any) -> None:
    """Benchmark graphdir against its ceilings and slapd, in one run."""
    if o["quick"]:
        o["rounds"] = o["rounds"] or 1
        o["duration"] = o["duration"] or 3
    o["rounds"] = o["rounds"] or 3
    o["duration"] = o["duration"] or 5
    started = time.time()
    ensure_tools()
    b = Bench(o)

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    RESULTS.mkdir(exist_ok=True)
    try:
        b.meta.update(machine=machine(), started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                      mode="quick" if o["quick"] else "full", rounds=o["rounds"], duration_s=o["duration"], warmup_s=o["warmup"],
                      connections=o["connections"],
                      placement="unpinned" if o["no_pin"] else "server (granian worker / raw sqlite / slapd) pinned to core 0, load generator to core 1")
        b.seed()
        b.server = Server(f"sqlite:///{b.db}", o["port"] or free_port(), b.work, b.cpu_server)
        b.server.start()
        log(f"== graphdir serve on 127.0.0.1:{b.server.port} (pid {b.server.sid}, workers {b.server.worker_pids()})")
        if b.slapd is not None:
            b.slapd.start(b.cpu_server)
            log(f"== slapd on {b.slapd.uri} (pid {b.slapd.proc.pid})")
        cases = b.cases()
        for c in cases:
            if c.conns == 64:
                c.conns = o["connections"]
        for rnd in range(o["rounds"]):
            log(f"== round {rnd + 1}/{o['rounds']}")
            for c in cases:
                r = b.run_case(c, rnd)
                b.results.append(r)
                extra = f" committed {r['committed']}" if "committed" in r else ""
                if r.get("wraps") and c.write:
                    extra += "  POOL EXHAUSTED (requests repeated): use a shorter --duration"
                log(f"   {c.name:22s} {r['rps']:>10,.1f} req/s  p50 {r['p50_us'] / 1000:8.2f} ms  p99 {r['p99_us'] / 1000:8.2f} ms  "
                    f"cpu {r['cpu_us'] or 0:8.0f} µs/req  errors {r.get('errors', 0)}{extra}")
        summary = summarize(cases, b.results)
        tg = targets(summary)
        prof = b.profile([x for x in o["profile_cases"].split(",") if x]) if o["profile_cases"] else {}
        b.meta["elapsed_s"] = round(time.time() - started, 1)
        md = report_md(b.meta, summary, tg)
        data = {"meta": b.meta, "summary": summary, "targets": tg, "runs": b.results, "profiles": prof, "markdown": md}
        (RESULTS / "latest.json").write_text(json.dumps(data, indent=1, default=str))
        (RESULTS / "latest.md").write_text(md)
        log("")
        log(md)
        log(f"(written to {RESULTS.relative_to(ROOT)}/latest.json and latest.md; {b.meta['elapsed_s']:.0f} s in all)")
        if o["write_readme"]:
            update_readme(md)
    finally:
        if b.server is not None:
            b.server.stop()
        if b.slapd is not None:
            b.slapd.stop()
        if not o["keep"] and b.work.exists():
            shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
