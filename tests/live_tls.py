"""A live ``graphdir serve --tls`` for tests that drive external tools (subprocess, free port,
temporary database and working directory); its CA, tenant and admin token are read from what
``serve`` prints, and it is stopped with its whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 60.0


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def live_tls_server(domain: str) -> Iterator[LiveTls]:
    workdir = Path(tempfile.mkdtemp(prefix="graphdir-live-"))
    db_url = f"sqlite:///{workdir / 'g.db'}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHDIR_")}
    env.update(GRAPHDIR_DEFAULT_DOMAIN=domain, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "graphdir", "serve", "--tls", "--host", "127.0.0.1", "--port", str(port), "--db", db_url],
                            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        info: dict[str, str] = {}
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            for line in list(lines):
                key, _, value = line.partition(":")
                if key in ("tenant id", "token", "CA file"):
                    info[key] = value.strip().split()[0]
            if len(info) == 3 and _answers(port):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"graphdir serve --tls exited with {proc.returncode}:\n" + "\n".join(lines))
            time.sleep(0.1)
        else:
            raise RuntimeError("graphdir serve --tls did not come up:\n" + "\n".join(lines))
        yield LiveTls(f"https://127.0.0.1:{port}", info["tenant id"], info["token"], db_url, info["CA file"], env, workdir, lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # granian workers left in the process group
            os.killpg(proc.pid, signal.SIGTERM)
        pumper.join(timeout=15)  # the pipe ends once every process holding it has exited
        assert proc.stdout is not None
        proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)  # the database holds keys and secrets
