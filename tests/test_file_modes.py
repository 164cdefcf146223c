"""Secrets at rest: the database (signing keys, hashed secrets and passwords) and the generated TLS
keys are readable by their owner only, whatever the umask (docs/configuration.md)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphdir import tls
from graphdir.settings import load_settings
from graphdir.web.app import build_app


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask022", "umask002", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_a_new_database_its_wal_and_its_directories_are_owner_only(tmp_path: Path, umask: int) -> None:
    shared = tmp_path / "shared"  # a directory that exists already (a working directory, /var/lib…)
    shared.mkdir()
    os.chmod(shared, 0o755)
    db = shared / "data" / "graphdir" / "graphdir.db"
    graph = build_app(load_settings(database_url=f"sqlite:///{db}", env={})).state.graph
    graph.start()  # creates the tenant, the app id and the signing keys: secrets in the file
    try:
        assert graph.store.sync(graph.store.get_meta("signing_keys")) or graph.ring.keys
        assert graph.store.sync(graph.store.list_tenants())  # a read connection too: the -shm is shared by every connection
        modes = {p.name: _mode(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))}
    finally:
        graph.stop()
    assert modes == {"graphdir.db": 0o600, "graphdir.db-wal": 0o600, "graphdir.db-shm": 0o600}
    assert (_mode(shared / "data"), _mode(db.parent)) == (0o700, 0o700)  # created by graphdir
    assert _mode(shared) == 0o755  # not created by graphdir: left as it is


def test_an_existing_database_readable_by_others_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "old.db"
    first = build_app(load_settings(database_url=f"sqlite:///{db}", env={})).state.graph
    first.start()
    first.stop()
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.touch()
        os.chmod(p, 0o644)
    again = build_app(load_settings(database_url=f"sqlite:///{db}", env={})).state.graph
    with caplog.at_level(logging.WARNING, logger="graphdir.files"):
        again.start()
    try:
        modes = [_mode(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))]
    finally:
        again.stop()
    assert modes == [0o600, 0o600, 0o600]
    assert any("holds secrets" in r.getMessage() and str(db) in r.getMessage() for r in caplog.records)


def test_generated_tls_keys_and_their_directory_are_owner_only(tmp_path: Path, umask: int) -> None:
    directory = tmp_path / "state" / "tls"
    files = tls.ensure(directory)
    assert (_mode(tmp_path / "state"), _mode(directory)) == (0o700, 0o700)
    assert _mode(directory / "ca-key.pem") == 0o600
    assert _mode(files.key) == 0o600
    # a key left readable by others (copied around, an older graphdir) is tightened on the next start
    os.chmod(files.key, 0o644)
    os.chmod(directory / "ca-key.pem", 0o640)
    tls.ensure(directory)
    assert (_mode(directory / "ca-key.pem"), _mode(files.key)) == (0o600, 0o600)
