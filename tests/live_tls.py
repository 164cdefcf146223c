"""A live ``graphdir serve --tls`` for tests that drive external tools (subprocess, free port,
temporary database and working directory); its CA, tenant and admin token are read from what
``serve`` prints, and it is stopped with its whole process group.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from live_helpers import LiveServer, free_port, server_env, start


@dataclass
class LiveTls:
    origin: str  # https://127.0.0.1:PORT
    tenant_id: str
    token: str  # the admin token `graphdir serve` prints
    db_url: str
    ca: str
    env: dict[str, str]
    workdir: Path
    output: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "graphdir", *args, "--db", self.db_url], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, f"graphdir {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    def http(self, token: str | None = None) -> httpx.Client:
        trust = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.origin, verify=trust, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=30)

    def members(self, group_id: str) -> list[str]:
        with self.http() as c:
            r = c.get(f"/v1.0/groups/{group_id}/members")
        assert r.status_code == 200, r.text
        return sorted(m["id"] for m in json.loads(r.text)["value"])


@contextlib.contextmanager
def live_tls_server(domain: str) -> Iterator[LiveTls]:
    """``graphdir serve --tls`` on a free port with its own database, default domain ``domain``;
    stopped with its process group, its directory (keys and secrets) removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="graphdir-live-"))
    env = server_env(workdir, default_domain=domain)
    server: LiveServer | None = None
    try:
        server = start(workdir, free_port(), env, "--tls")
        b = server.banner
        yield LiveTls(f"https://127.0.0.1:{server.port}", b["tenant id"], server.token, env["GRAPHDIR_DATABASE_URL"], b["CA file"], env, workdir, server.lines)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the database holds keys and secrets
