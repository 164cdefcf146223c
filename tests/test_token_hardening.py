"""Issue 9's token items, through the real app: key rotation that follows the JWKS exactly (another
process rotates or removes a key: a new key's tokens work at once, a removed key's cached tokens stop
at once, forged kids cost no database read), lifetime claims that must be numbers, and Graph's other
names (national clouds, this service's own address) in scopes and ``aud``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest

from graphdir import identity
from graphdir.auth.keysignal import KeySignal
from graphdir.auth.tokens import SOVEREIGN_GRAPH, KeyRing
from graphdir.bootstrap import open_store
from graphdir.settings import load_settings
from graphdir.store.base import Store, run_now
from graphdir.web.app import build_app
from identity_helpers import (
    DOMAIN_A,
    MSG_AUDIENCE,
    MSG_INVALID,
    MSG_SIGNATURE,
    TestClient,
    World,
    app_token,
    assert_graph_error,
    assert_oauth_error,
    claims_of,
    graph_claims,
    open_world,
    other_rsa_key,
)

READ = ["GroupMember.Read.All"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with open_world(tmp_path / "g.db") as w:
        yield w


@contextlib.contextmanager
def other_connection(w: World) -> Iterator[Store]:
    """The same database opened a second time, as `graphdir keys …` in another process opens it."""
    store = open_store(w.graph.settings)
    store.open()
    try:
        yield store
    finally:
        store.close()


def _get(w: World, token: str) -> httpx.Response:
    return w.client.get("/v1.0/groups", headers={"Authorization": f"Bearer {token}"})


def _kids(w: World) -> set[str]:
    return {k["kid"] for k in w.client.get(f"/{w.tid_a}/discovery/v2.0/keys").json()["keys"]}


# -- key rotation -------------------------------------------------------------------------------------
def test_token_of_a_key_rotated_elsewhere_is_accepted_at_once(world: World) -> None:
    w = world
    assert _kids(w) == {w.ring.active.kid}  # the service has just read its keys
    with other_connection(w) as other:
        ring = KeyRing(other)
        new = ring.rotate()
        token = app_token(ring, w.tid_a, READ)  # signed by the new key, in "the other process"
    assert jwt.get_unverified_header(token)["kid"] == new.kid
    assert _get(w, token).status_code == 200  # not 401 for up to 2 s
    assert new.kid in _kids(w)


def test_removed_key_stops_validating_cached_tokens_at_once(world: World) -> None:
    """A key pruned from the JWKS by a rotation elsewhere: the token it signed was cached, and is refused anyway."""
    w = world
    old = app_token(w.ring, w.tid_a, READ)
    old_kid = w.ring.active.kid
    assert _get(w, old).status_code == 200
    assert _get(w, old).status_code == 200  # now served from the caches
    with other_connection(w) as other:
        ring = KeyRing(other, max_token_lifetime=0)
        ring.rotate()
        ring.rotate()  # the first rotation's key, retired 0 s ago, is past max_token_lifetime=0: removed
    assert_graph_error(_get(w, old), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
    assert old_kid not in _kids(w)
    assert _get(w, app_token(w.ring, w.tid_a, READ)).status_code == 200  # the service signs with the newest key


def test_keys_rotate_and_remove_from_the_command_line(world: World) -> None:
    """`graphdir keys rotate` in another process: its tokens work at once; `graphdir keys remove KID`: the JWKS loses
    the key and the tokens it signed, cached or not, are refused at once."""
    w = world
    old = app_token(w.ring, w.tid_a, READ)
    old_kid = w.ring.active.kid
    assert _get(w, old).status_code == 200
    url = w.graph.settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHDIR_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "graphdir", *args, "--db", url], capture_output=True, text=True, env=env, timeout=120)

    refused = cli("keys", "remove", old_kid)  # the active key
    assert refused.returncode == 2 and "rotate first" in refused.stderr, refused
    assert _get(w, old).status_code == 200
    rotated = cli("keys", "rotate")
    assert rotated.returncode == 0, rotated
    new_kid = rotated.stdout.split()[-1]
    minted = cli("token", "--roles", "GroupMember.Read.All")  # signed by the new key in the CLI's process
    assert minted.returncode == 0, minted
    assert jwt.get_unverified_header(minted.stdout.strip())["kid"] == new_kid != old_kid
    assert _get(w, minted.stdout.strip()).status_code == 200  # the service knows the new key at once
    unknown = cli("keys", "remove", "no-such-kid")
    assert unknown.returncode == 2 and "no signing key 'no-such-kid'" in unknown.stderr, unknown
    done = cli("keys", "remove", old_kid)
    assert done.returncode == 0 and done.stdout.strip() == f"removed signing key: {old_kid}", done
    assert old_kid not in _kids(w)
    assert_graph_error(_get(w, old), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)


def test_forged_kids_cost_no_database_read(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown kids with no rotation signalled are refused from memory; after a rotation, one read."""
    w = world
    reads: list[str] = []
    real = w.graph.store.get_meta

    async def counting(key: str) -> str | None:
        reads.append(key)
        return await real(key)

    monkeypatch.setattr(w.graph.store, "get_meta", counting)
    for i in range(5):
        forged = jwt.encode(graph_claims(w.tid_a, "x", roles=READ), w.ring.active.private(), algorithm="RS256", headers={"kid": f"forged{i}"})
        assert_graph_error(_get(w, forged), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
    assert reads == []
    with other_connection(w) as other:
        token = app_token(_rotated(other), w.tid_a, READ)
    assert _get(w, token).status_code == 200
    assert _get(w, token).status_code == 200
    assert reads == ["signing_keys"]  # one read for the rotation, none per request


def _rotated(store: Store) -> KeyRing:
    ring = KeyRing(store)
    ring.rotate()
    return ring


def test_key_signal_file_is_owner_only(world: World) -> None:
    path = Path(f"{world.graph.settings.sqlite_path}-keys")
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == 8


# -- lifetime claims --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "claims",
    [{"nbf": "later"}, {"iat": "now"}, {"exp": "tomorrow"}, {"nbf": True}, {"exp": math.inf}, {"nbf": math.nan}, {"iat": None}, {"exp": [1]}],
    ids=repr,
)
def test_non_numeric_lifetime_claims_are_refused(world: World, claims: dict[str, Any]) -> None:
    w = world
    token = w.ring.sign({**graph_claims(w.tid_a, "x", roles=READ), **claims})
    assert_graph_error(_get(w, token), 401, "InvalidAuthenticationToken", MSG_INVALID)


def test_lifetime_claims_may_be_floats_or_absent(world: World) -> None:
    w = world
    claims = graph_claims(w.tid_a, "x", roles=READ)
    claims["exp"] = float(claims["exp"]) + 0.5
    del claims["nbf"], claims["iat"]
    assert _get(w, w.ring.sign(claims)).status_code == 200


# -- Graph's other names ------------------------------------------------------------------------------
@pytest.mark.parametrize("aud", [*SOVEREIGN_GRAPH, *(a + "/" for a in SOVEREIGN_GRAPH), "http://testserver", "http://TestServer/"])
def test_graph_names_accepted_as_audience(world: World, aud: str) -> None:
    """National clouds' Graph and this service's own origin (TestClient's is http://testserver)."""
    w = world
    assert _get(w, w.ring.sign(graph_claims(w.tid_a, "x", roles=READ, aud=aud))).status_code == 200


@pytest.mark.parametrize("aud", ["http://testserver.evil", "https://testserver", "http://testserver:8080", "https://graph.microsoft.us.evil", ""])
def test_other_audiences_still_refused(world: World, aud: str) -> None:
    w = world
    assert_graph_error(_get(w, w.ring.sign(graph_claims(w.tid_a, "x", roles=READ, aud=aud))), 401, "InvalidAuthenticationToken", MSG_AUDIENCE)


def _daemon(w: World) -> tuple[str, str]:
    app, secret = identity.create_app(w.graph.store, w.tid_a, w.unique("daemon"), roles=READ)
    assert secret is not None
    return app.app_id, secret


def _token(w: World, app_id: str, secret: str, scope: str, host: str | None = None) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret, "scope": scope}
    headers = {"host": host} if host else {}
    return w.client.post(f"/{w.tid_a}/oauth2/v2.0/token", data=form, headers=headers)


@pytest.mark.parametrize(
    ("scope", "aud"),
    [
        ("http://testserver//.default", "http://testserver"),  # what `az` asks with --endpoint-microsoft-graph-resource-id http://testserver/
        ("http://testserver/.default", "http://testserver"),
        ("https://graph.microsoft.us/.default", "https://graph.microsoft.us"),
        ("https://dod-graph.microsoft.us//.default", "https://dod-graph.microsoft.us"),
        ("https://microsoftgraph.chinacloudapi.cn/.default", "https://microsoftgraph.chinacloudapi.cn"),
        ("https://graph.microsoft.de/.default", "https://graph.microsoft.de"),
    ],
)
def test_graph_names_accepted_in_scopes(world: World, scope: str, aud: str) -> None:
    w = world
    app_id, secret = _daemon(w)
    resp = _token(w, app_id, secret, scope)
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    assert claims_of(token)["aud"] == aud
    assert _get(w, token).status_code == 200


def test_other_resources_still_unknown(world: World) -> None:
    w = world
    app_id, secret = _daemon(w)
    for resource in ("https://testserver.evil", "https://graph.microsoft.us.evil", "https://management.core.windows.net"):
        text = f"The resource principal named {resource} was not found in the tenant named "
        body = assert_oauth_error(_token(w, app_id, secret, f"{resource}//.default"), 400, "invalid_resource", 500011)
        assert body["error_description"].startswith(f"AADSTS500011: {text}"), body


def test_public_base_url_names_graph(tmp_path: Path) -> None:
    """With ``public_base_url`` set, that address is Graph's name in scopes and aud, whatever Host the request used."""
    base = "https://directory.example:8443"
    app = build_app(load_settings(database_url=f"sqlite:///{tmp_path / 'g.db'}", default_domain=DOMAIN_A, public_base_url=base, env={}))
    with TestClient(app) as client:
        graph = app.state.graph
        tid = graph.tenant["id"]
        daemon, secret = identity.create_app(graph.store, tid, "daemon", roles=READ)
        form = {"grant_type": "client_credentials", "client_id": daemon.app_id, "client_secret": secret or "", "scope": f"{base}//.default"}
        resp = client.post(f"/{tid}/oauth2/v2.0/token", data=form)
        assert resp.status_code == 200, resp.text
        token = resp.json()["access_token"]
        assert claims_of(token)["aud"] == base
        assert client.get("/v1.0/groups", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        minted = graph.ring.sign(graph_claims(tid, "x", roles=READ, aud=base + "/"))
        assert client.get("/v1.0/groups", headers={"Authorization": f"Bearer {minted}"}).status_code == 200


# -- the "keys changed" signal's edges ------------------------------------------------------------------
T = TypeVar("T")


class _Meta:
    """A meta store without a file (another backend, or a database in memory)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    def sync(self, aw: Awaitable[T]) -> T:
        return run_now(aw)

    def put_meta(self, key: str, value: str) -> None:
        self.values[key] = value


def test_without_a_file_keys_are_reread_on_an_interval() -> None:
    meta = _Meta()
    ring = KeyRing(meta, reload_interval=3600)
    other = KeyRing(meta)  # same "database", no signal file
    other.rotate()
    assert ring.public_key(other.active.kid) is None  # not re-read before the interval
    ring.refresh(force=True)
    assert ring.public_key(other.active.kid) is not None
    fast = KeySignal(None, fallback_interval=0)
    assert fast.changed()
    fast.announce()  # nothing to tell, no error
    fast.close()


def test_a_signal_file_that_cannot_be_made_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    signal = KeySignal(tmp_path / "missing" / "g.db-keys", fallback_interval=3600)
    assert "cannot use" in caplog.text
    assert not signal.changed()
    signal.announce()
    assert "cannot write" in caplog.text


def test_remove_refuses_the_active_and_unknown_keys() -> None:
    ring = KeyRing(_Meta())
    with pytest.raises(ValueError, match="rotate first"):
        ring.remove(ring.active.kid)
    with pytest.raises(KeyError):
        ring.remove("nope")
    old = ring.active.kid
    ring.rotate()
    gen = ring.generation
    assert ring.remove(old).kid == old
    assert ring.generation == gen + 1 and ring.public_key(old) is None


def test_signal_seen_across_mappings(tmp_path: Path) -> None:
    path = tmp_path / "g.db-keys"
    reader, writer = KeySignal(path), KeySignal(path)
    assert not reader.changed()
    writer.announce()
    assert reader.changed() and not reader.changed()  # once per change
    reader.close()
    writer.close()


def test_own_names_are_not_audiences_of_external_issuers(tmp_path: Path) -> None:
    """An external issuer signs tokens for all its tenant's resources with the same keys: naming another
    resource as the request's Host must not turn its token into a Graph token here."""
    foreign = other_rsa_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(foreign.public_key()))
    jwk.update(kid="entra-key-1", use="sig")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    (tmp_path / "issuers.json").write_text(json.dumps([{"tenant_id": tid, "jwks_file": str(tmp_path / "jwks.json"), "audiences": ["api://graphdir"]}]))
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/g.db", external_issuers_file=str(tmp_path / "issuers.json"),
                             public_base_url="https://directory.example", env={})  # fmt: skip
    app = build_app(settings)
    with TestClient(app) as client:
        app.state.graph.store.put_tenant({"id": tid, "displayName": "Contoso (Entra)", "domain": "contoso.example", "props": {"domains": ["contoso.example"]}})
        now = int(time.time())
        claims = {"aud": "api://graphdir", "iss": f"https://login.microsoftonline.com/{tid}/v2.0", "tid": tid, "iat": now, "nbf": now,
                  "exp": now + 600, "azp": "c0ffee00-0000-4000-8000-000000000000", "roles": ["Group.Read.All"], "oid": "x", "ver": "2.0"}  # fmt: skip

        def get(aud: str, host: str = "testserver") -> httpx.Response:
            tok = jwt.encode({**claims, "aud": aud}, foreign, algorithm="RS256", headers={"kid": "entra-key-1"})
            return client.get("/v1.0/groups", headers={"Authorization": f"Bearer {tok}", "host": host})

        assert get("api://graphdir").status_code == 200
        assert_graph_error(get("https://payroll.contoso.example", host="payroll.contoso.example"), 401, "InvalidAuthenticationToken", MSG_AUDIENCE)
        assert_graph_error(get("https://directory.example"), 401, "InvalidAuthenticationToken", MSG_AUDIENCE)


def test_a_ring_learns_of_other_rings_keys_when_asked(tmp_path: Path) -> None:
    """Direct callers of the ring (the token endpoint signs, the JWKS lists) see another process's rotation at once too."""
    with other_store(tmp_path / "g.db") as one, other_store(tmp_path / "g.db") as two:
        a, b = KeyRing(one), KeyRing(two)
        assert a.active.kid == b.active.kid
        new = b.rotate()
        assert a.public_key(new.kid) is not None  # an unknown kid with a change signalled: one read
        newer = b.rotate()
        a.refresh()
        assert a.active.kid == newer.kid
        assert a.public_key("forged") is None


@contextlib.contextmanager
def other_store(path: Path) -> Iterator[Store]:
    store = open_store(load_settings(database_url=f"sqlite:///{path}", env={}))
    store.open()
    try:
        yield store
    finally:
        store.close()


def test_audience_must_be_a_string(world: World) -> None:
    w = world
    for aud in (["https://graph.microsoft.com"], {"aud": "http://testserver"}, 3):
        token = w.ring.sign(graph_claims(w.tid_a, "x", roles=READ, aud=aud))
        assert_graph_error(_get(w, token), 401, "InvalidAuthenticationToken", MSG_AUDIENCE)


def test_on_postgresql_a_rotation_reaches_running_rings_through_notify() -> None:
    """A database server has no signal file: a ring that watches (a serving worker) learns of a key added
    or removed by another process (``graphdir keys rotate`` / ``remove``) through LISTEN/NOTIFY, re-reading
    the keys on its listener thread, and its check() on the event loop never reads the database."""
    from graphdir.store.postgres import PostgresStore
    from pg_helpers import fresh_database

    with fresh_database() as url:
        serving, other = PostgresStore(url), PostgresStore(url)
        serving.open()
        other.open()
        try:
            ring = KeyRing(serving)
            ring.watch()
            first = ring.active.kid
            new = KeyRing(other).rotate()
            deadline = time.monotonic() + 10
            while new.kid not in {k.kid for k in ring.keys} and time.monotonic() < deadline:
                time.sleep(0.02)
            assert new.kid in {k.kid for k in ring.keys}
            assert ring.public_key(new.kid) is not None
            generation = ring.check()
            KeyRing(other).remove(first)
            while ring.public_key(first) is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert ring.public_key(first) is None
            assert ring.check() == generation + 1  # a removed key empties the token caches
        finally:
            other.close()
            serving.close()
