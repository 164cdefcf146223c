"""The LDAP peer: a private OpenLDAP slapd (Debian package, mdb backend), loopback only.

The bench writes its own slapd.conf in a temporary directory, bulk-loads the same large group with
``slapadd -q`` (users under ou=people, the group as a groupOfNames whose ``member`` values are the
users' DNs), starts ``slapd -h ldap://127.0.0.1:PORT/`` in the foreground of its own session and
stops it by pid. The system slapd is never touched.

Configurations (``--slapd-config``), all from the documentation for large static groups
(slapd.conf(5) ``sortvals``, slapd-mdb(5) ``multival``, the admin guide's indexing advice, Symas KB
"Solving slow write performance"):

* ``indexed`` (default, the documented best practice): ``sortvals member`` (values kept sorted, so a
  value is found and deleted by binary search) and ``index member eq`` (what reverse lookups such as
  "which groups is X in" need), plus ``index objectClass,uid eq``;
* ``sortvals``: ``sortvals member`` without the member index (fastest deletes measured here);
* ``multival``: ``indexed`` plus ``multival member 100,10`` (values stored as separate records).

Durability is the default (an fsync per write transaction; no ``dbnosync``), like graphdir's
``synchronous=FULL``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SUFFIX = "dc=bench,dc=test"
ROOTDN = f"cn=admin,{SUFFIX}"
ROOTPW = "bench-secret"
GROUP_DN = f"cn=everyone,ou=groups,{SUFFIX}"

CONF = """\
# written by bench/ldap.py — a private instance for the benchmark
include         /etc/ldap/schema/core.schema
include         /etc/ldap/schema/cosine.schema
include         /etc/ldap/schema/inetorgperson.schema
pidfile         {dir}/slapd.pid
argsfile        {dir}/slapd.args
modulepath      /usr/lib/ldap
moduleload      back_mdb
loglevel        0
threads         {threads}
tool-threads    2
sortvals        member

database        mdb
maxsize         17179869184
suffix          "{suffix}"
rootdn          "{rootdn}"
rootpw          {rootpw}
directory       {dir}/db
index           objectClass eq
index           uid eq
{extra}"""

VARIANTS = {
    "indexed": "index           member eq\n",
    "sortvals": "",
    "multival": "index           member eq\nmultival        member 100,10\n",
}


def user_dn(uid: str) -> str:
    return f"uid={uid},ou=people,{SUFFIX}"


def slapd_version() -> str:
    try:
        out = subprocess.run(["/usr/sbin/slapd", "-VV"], capture_output=True, text=True)
    except OSError:  # not installed (bench/backends.py does not need it)
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].split("$")[1].replace("OpenLDAP:", "").strip() if text and "$" in text[0] else "?"


class Slapd:
    def __init__(self, workdir: Path, port: int, threads: int = 8, variant: str = "indexed") -> None:
        self.variant = variant
        self.dir = workdir
        self.port = port
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "slapd.conf"

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    def configure(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "db").mkdir(parents=True)
        self.conf.write_text(CONF.format(dir=self.dir, suffix=SUFFIX, rootdn=ROOTDN, rootpw=ROOTPW, threads=self.threads,
                                              extra=VARIANTS[self.variant]))

    def load(self, ldif: Path) -> float:
        t0 = time.perf_counter()
        subprocess.run(["/usr/sbin/slapadd", "-q", "-f", str(self.conf), "-l", str(ldif)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
        return time.perf_counter() - t0

    def start(self, cpu: str | None = "0") -> None:
        cmd = ["/usr/sbin/slapd", "-d", "0", "-h", f"ldap://127.0.0.1:{self.port}/", "-f", str(self.conf)]
        if cpu is not None:
            cmd = ["taskset", "-c", cpu, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("slapd did not start listening within 60 s")

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # slapd shuts down cleanly on SIGINT/SIGTERM
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def modify_ldif(self, path: Path) -> None:
        """Apply an LDIF of modifications with ldapmodify (used to put removed members back)."""
        subprocess.run(["ldapmodify", "-x", "-H", self.uri, "-D", ROOTDN, "-w", ROOTPW, "-f", str(path)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)

    def restore_members(self, dns: list[str], tmp: Path) -> None:
        """Put members back in one modify (sorted values make this fast)."""
        if not dns:
            return
        with open(tmp, "w") as fh:
            fh.write(f"dn: {GROUP_DN}\nchangetype: modify\nadd: member\n")
            fh.writelines(f"member: {dn}\n" for dn in dns)
            fh.write("-\n\n")
        self.modify_ldif(tmp)

    def count_members(self) -> int:
        out = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.uri, "-D", ROOTDN, "-w", ROOTPW, "-b", GROUP_DN,
                              "-s", "base", "(objectClass=*)", "member"], capture_output=True, text=True, timeout=600)
        return sum(1 for line in out.stdout.splitlines() if line.startswith("member:"))


def describe(variant: str) -> str:
    return {"indexed": "sortvals member + index member eq", "sortvals": "sortvals member, no member index",
            "multival": "sortvals member + index member eq + multival member 100,10"}[variant]
