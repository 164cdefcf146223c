"""A ``2xx`` write is committed before the response: it survives the server being killed.

Runs a live ``graphdir serve``, sends concurrent add-member requests (group commit batches
them), kills the server with SIGKILL right after the last response, then reopens the database
through the store seam: every membership answered ``204`` must be there. (tests/test_concurrency.py
does the same under load on both backends.)
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from graphdir import bootstrap
from graphdir.query import ListQuery
from graphdir.settings import load_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(db: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphdir", "serve", "--port", str(port), "--db", f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    token = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.match(r"token:\s+(\S+)", line)
        if m:
            token = m.group(1)
            break
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, token
        except OSError:
            time.sleep(0.1)
    _kill(proc)
    raise RuntimeError("graphdir serve did not start")


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the server (no shutdown: what was acknowledged must already be on disk) and close its pipe."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_204_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    port = _free_port()
    proc, token = _start(db, port)
    base = f"http://127.0.0.1:{port}/v1.0"
    h = {"Authorization": f"Bearer {token}"}
    acked: list[str] = []
    try:

        async def run() -> str:
            async with httpx.AsyncClient(base_url=base, headers=h, timeout=30) as c:
                r = await c.post("/groups", json={"displayName": "d", "mailEnabled": False, "mailNickname": "d", "securityEnabled": True})
                assert r.status_code == 201, r.text
                gid = str(r.json()["id"])
                users = []
                for i in range(40):
                    r = await c.post(
                        f"http://127.0.0.1:{port}/graphdir/admin/seed",
                        json={"type": "user", "displayName": f"u{i}", "userPrincipalName": f"u{i}@contoso.onmicrosoft.com"},
                    )
                    assert r.status_code == 201, r.text
                    users.append(str(r.json()["id"]))

                async def add(uid: str) -> None:
                    resp = await c.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"})
                    if resp.status_code == 204:
                        acked.append(uid)

                await asyncio.gather(*(add(u) for u in users))
                return gid

        gid = asyncio.run(run())
    finally:
        _kill(proc)
    assert len(acked) == 40
    # read back through the store seam (what a restarted server would read), not the file behind it
    settings = load_settings(env={}, database_url=f"sqlite:///{db}")
    store = bootstrap.open_store(settings)
    store.open()
    try:
        tid = store.sync(store.get_meta("default_tenant"))
        assert tid is not None
        rows = {o.id for o in store.sync(store.list_members(tid, gid, ListQuery(top=999))).items}
    finally:
        store.close()
    assert set(acked) <= rows


def test_rejected_write_leaves_nothing(tmp_path: Path) -> None:
    """An all-or-nothing PATCH that fails on its last reference keeps none of the others."""
    db = tmp_path / "r.db"
    port = _free_port()
    proc, token = _start(db, port)
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            gid = c.post("/v1.0/groups", json={"displayName": "r", "mailEnabled": False, "mailNickname": "r", "securityEnabled": True}).json()["id"]
            uids = [c.post("/graphdir/admin/seed", json={"type": "user", "displayName": f"x{i}"}).json()["id"] for i in range(3)]
            refs = [f"https://graph.microsoft.com/v1.0/directoryObjects/{u}" for u in uids]
            refs.append("https://graph.microsoft.com/v1.0/directoryObjects/00000000-0000-0000-0000-000000000001")
            r = c.patch(f"/v1.0/groups/{gid}", json={"members@odata.bind": refs})
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "Request_ResourceNotFound"
            members = c.get(f"/v1.0/groups/{gid}/members").json()["value"]
            assert members == []
    finally:
        _kill(proc)
