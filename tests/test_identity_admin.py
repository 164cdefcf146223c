"""Managing identities: the CLI (tenant, app, user, role, keys, ca-path, token), seed files, TLS material, external issuers."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from graphdir import tls
from graphdir.auth import apps
from graphdir.auth.tokens import mint
from graphdir.cli import main
from graphdir.settings import load_settings
from graphdir.store.migrations import LATEST
from graphdir.store.sqlite import SqliteStore
from graphdir.web.app import build_app
from identity_helpers import (
    GROUPS_ADMIN,
    MSG_AUDIENCE,
    MSG_ISSUER,
    MSG_SIGNATURE,
    PASSWORD,
    TestClient,
    assert_graph_error,
    claims_of,
    other_rsa_key,
)

USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("GRAPHDIR_CONFIG", "GRAPHDIR_DATABASE_URL", "GRAPHDIR_DEFAULT_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    return f"sqlite:///{tmp_path / 'g.db'}"


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_tenants_apps_users_roles(db: str) -> None:
    ok("migrate", "--db", db)
    default = json.loads(ok("tenant", "list", "--db", db, "--json"))
    assert len(default) == 1 and default[0]["default"] is True
    t = json.loads(ok("tenant", "create", "--db", db, "--name", "Fabrikam", "--domain", "fabrikam.onmicrosoft.com", "--json"))
    tid = t["id"]
    assert {r["id"] for r in json.loads(ok("tenant", "list", "--db", db, "--json"))} == {default[0]["id"], tid}
    dup = run("tenant", "create", "--db", db, "--name", "X", "--domain", "fabrikam.onmicrosoft.com")
    assert dup.exit_code == 1 and "already belongs to tenant" in dup.output

    a = json.loads(ok("app", "create", "--db", db, "--tenant", "fabrikam.onmicrosoft.com", "--name", "daemon",
                      "--roles", "GroupMember.ReadWrite.All,Group.Read.All", "--scopes", "User.Read", "--json"))  # fmt: skip
    assert a["tenantId"] == tid and a["roles"] == ["GroupMember.ReadWrite.All", "Group.Read.All"] and a["scopes"] == ["User.Read"]
    secret = a["clientSecret"]
    assert len(secret) == 40 and secret[3:6] == "8Q~"
    listed = json.loads(ok("app", "list", "--db", db, "--tenant", tid))
    assert listed[0]["appId"] == a["clientId"] and listed[0]["secrets"][0]["hint"] == secret[:3]
    assert secret not in json.dumps(listed)  # only a hash is stored
    second = ok("app", "add-secret", "--db", db, "--tenant", tid, "--app", "daemon").strip()
    assert len(second) == 40 and second != secret
    ok("app", "grant", "--db", db, "--tenant", tid, "--app", a["clientId"], "--roles", "User.Read.All", "--scopes", "GroupMember.ReadWrite.All")
    ok("app", "grant", "--db", db, "--tenant", tid, "--app", a["clientId"], "--roles", "Group.Read.All", "--revoke")
    view = json.loads(ok("app", "list", "--db", db, "--tenant", tid))[0]
    assert view["roles"] == ["GroupMember.ReadWrite.All", "User.Read.All"] and view["scopes"] == ["User.Read", "GroupMember.ReadWrite.All"]

    u = json.loads(ok("user", "create", "--db", db, "--tenant", tid, "--upn", "alice@fabrikam.onmicrosoft.com", "--password", PASSWORD,
                      "--role", "Groups Administrator", "--json"))  # fmt: skip
    assert u["roles"] == ["Groups Administrator"]
    bad = run("user", "create", "--db", db, "--tenant", tid, "--upn", "bob@contoso.onmicrosoft.com", "--password", PASSWORD)
    assert bad.exit_code == 1 and "domain portion of the userPrincipalName" in bad.output
    weak = run("user", "create", "--db", db, "--tenant", tid, "--upn", "bob@fabrikam.onmicrosoft.com", "--password", "short")
    assert weak.exit_code == 1 and "password complexity" in weak.output
    ok("role", "assign", "--db", db, "--tenant", tid, "--user", "alice@fabrikam.onmicrosoft.com", "--role", USER_ADMIN)
    assert ok("role", "list", "--db", db, "--tenant", tid).count("alice@fabrikam.onmicrosoft.com") == 2
    unknown = run("role", "assign", "--db", db, "--tenant", tid, "--user", "alice@fabrikam.onmicrosoft.com", "--role", "Chief Wizard")
    assert unknown.exit_code == 1 and "unknown directory role" in unknown.output

    # graphdir token --user: wids from the role assignments
    tok = ok("token", "--db", db, "--tenant", "fabrikam.onmicrosoft.com", "--user", "alice@fabrikam.onmicrosoft.com").strip()
    c = claims_of(tok)
    assert c["tid"] == tid and sorted(c["wids"]) == sorted([GROUPS_ADMIN, USER_ADMIN])
    ok("role", "remove", "--db", db, "--tenant", tid, "--user", "alice@fabrikam.onmicrosoft.com", "--role", "User Administrator")
    tok = ok("token", "--db", db, "--tenant", tid, "--user", "alice@fabrikam.onmicrosoft.com").strip()
    assert claims_of(tok)["wids"] == [GROUPS_ADMIN]
    assert run("app", "list", "--db", db, "--tenant", "nowhere.example").exit_code == 1


def test_cli_keys_and_ca_path(db: str, tmp_path: Path) -> None:
    ok("migrate", "--db", db)
    first = ok("keys", "list", "--db", db).splitlines()
    assert len(first) == 1 and first[0].endswith("active")
    new_kid = ok("keys", "rotate", "--db", db).split()[-1]
    keys = ok("keys", "list", "--db", db).splitlines()
    assert len(keys) == 2 and keys[1].startswith(new_kid) and keys[1].endswith("active") and not keys[0].endswith("active")
    assert jwt.get_unverified_header(ok("token", "--db", db).strip())["kid"] == new_kid
    ca = Path(ok("ca-path", "--db", db).strip())
    assert ca == (tmp_path / "tls" / "ca.pem").resolve() and ca.exists()
    assert ok("ca-path", "--db", db).strip() == str(ca)  # reused, not regenerated
    assert ok("migrate", "--db", db).strip() == f"schema version {LATEST}"


def test_seed_file_with_tenants_apps_users_roles(db: str, tmp_path: Path) -> None:
    data: dict[str, Any] = {"tenants": [
        {"default": True, "users": [{"userPrincipalName": "root@contoso.onmicrosoft.com", "password": PASSWORD, "roles": ["Global Administrator"]}]},
        {"id": "5e0c9a7b-1111-4222-8333-944445555666", "displayName": "Fabrikam", "domain": "fabrikam.onmicrosoft.com",
         "applications": [
             {"displayName": "daemon", "appId": "aaaaaaaa-1111-4222-8333-944445555666", "secret": "s3cret-value-for-tests",
              "roles": ["GroupMember.ReadWrite.All"]},
             {"displayName": "generated", "roles": "Group.Read.All, User.Read.All"},
         ],
         "users": [
             {"userPrincipalName": "alice@fabrikam.onmicrosoft.com", "displayName": "Alice", "password": PASSWORD, "roles": ["Groups Administrator"]},
             {"userPrincipalName": "bob@fabrikam.onmicrosoft.com", "password": PASSWORD},
         ],
         "objects": [{"type": "group", "displayName": "Sales", "mailNickname": "sales", "mailEnabled": False, "securityEnabled": True,
                      "groupTypes": [], "members": ["bob@fabrikam.onmicrosoft.com"], "owners": ["alice@fabrikam.onmicrosoft.com"]}]},
    ]}  # fmt: skip
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(data))
    out = ok("seed", "--db", db, str(path))
    assert "application\taaaaaaaa-1111-4222-8333-944445555666\tdaemon\tsecret: (as given)" in out
    generated = next(line for line in out.splitlines() if "\tgenerated\t" in line).split("secret: ")[1]
    assert len(generated) == 40
    store = SqliteStore(Path(db[len("sqlite:///"):]))
    store.open()
    try:
        tid = "5e0c9a7b-1111-4222-8333-944445555666"
        app = store.sync(store.get_application(tid, "aaaaaaaa-1111-4222-8333-944445555666"))
        assert app is not None and apps.check_secret(app, "s3cret-value-for-tests") == "ok" and app.props["roles"] == ["GroupMember.ReadWrite.All"]
        gen = next(a for a in store.sync(store.list_applications(tid)) if a.display_name == "generated")
        assert gen.props["roles"] == ["Group.Read.All", "User.Read.All"] and apps.check_secret(gen, generated) == "ok"
        alice = store.sync(store.get_by_upn(tid, "alice@fabrikam.onmicrosoft.com"))
        bob = store.sync(store.get_by_upn(tid, "bob@fabrikam.onmicrosoft.com"))
        assert alice and bob and store.sync(store.role_ids(tid, alice.id)) == [GROUPS_ADMIN]
        assert "password" not in alice.props and alice.props["passwordProfile"]["hash"].startswith("pbkdf2$")
        sales = next(line.split("\t")[1] for line in out.splitlines() if line.endswith("\tSales"))
        assert store.sync(store.is_member(tid, sales, bob.id)) and store.sync(store.is_owner(tid, sales, alice.id))
        default = store.sync(store.get_meta("default_tenant"))
        root = store.sync(store.get_by_upn(default, "root@contoso.onmicrosoft.com")) if default else None
        assert root and store.sync(store.role_ids(root.tenant_id, root.id)) == ["62e90394-69f5-4237-9190-012177145e10"]
    finally:
        store.close()
    # the old format (a list of objects for the default tenant) still works
    path.write_text(json.dumps([{"type": "device", "displayName": "laptop"}]))
    assert "device\t" in ok("seed", "--db", db, str(path))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"type": "group", "displayName": "x", "members": ["nobody@contoso.onmicrosoft.com"]}]))
    assert run("seed", "--db", db, str(bad)).exit_code == 2


# -- TLS ------------------------------------------------------------------------------------------------------------------
def test_tls_material(tmp_path: Path) -> None:
    files = tls.ensure(tmp_path / "tls")
    ca_pem, cert_pem = files.ca.read_bytes(), files.cert.read_bytes()
    assert (files.key.stat().st_mode & 0o777) == 0o600 and ((tmp_path / "tls" / "ca-key.pem").stat().st_mode & 0o777) == 0o600
    leaf, chain_ca = x509.load_pem_x509_certificates(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert chain_ca == ca and leaf.issuer == ca.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    # reused as is
    again = tls.ensure(tmp_path / "tls")
    assert again.ca.read_bytes() == ca_pem and again.cert.read_bytes() == cert_pem
    # another host: same CA, new server certificate covering it
    other = tls.ensure(tmp_path / "tls", host="graphdir.test")
    assert other.ca.read_bytes() == ca_pem and other.cert.read_bytes() != cert_pem
    assert "graphdir.test" in x509.load_pem_x509_certificates(other.cert.read_bytes())[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)  # fmt: skip
    # Python's strict verification accepts the chain
    ctx = ssl.create_default_context(cafile=str(files.ca))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(other.cert, other.key)
    client_in, client_out, server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = ctx.wrap_bio(client_in, client_out, server_hostname="127.0.0.1")
    s = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for side, out, peer_in in ((c, client_out, server_in), (s, server_out, client_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            peer_in.write(out.read())
    assert c.version() is not None and s.version() is not None


def test_tls_settings(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/data/g.db", env={})
    assert tls.tls_directory(settings) == tmp_path / "data" / "tls"
    assert tls.files_for(settings).ca == tmp_path / "data" / "tls" / "ca.pem"
    given = load_settings(database_url=f"sqlite:///{tmp_path}/g.db", tls_cert="/x/cert.pem", tls_key="/x/key.pem", env={})
    assert tls.files_for(given).cert == Path("/x/cert.pem")
    with pytest.raises(ValueError):
        tls.files_for(load_settings(database_url=f"sqlite:///{tmp_path}/g.db", tls_cert="/x/cert.pem", env={}))


# -- an external issuer (e.g. the real Entra tenant behind a graphdir tenant) --------------------------------------------------
def test_external_issuer(tmp_path: Path) -> None:
    foreign = other_rsa_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(foreign.public_key()))
    jwk.update(kid="entra-key-1", use="sig")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    (tmp_path / "issuers.json").write_text(json.dumps([{"tenant_id": tid, "jwks_file": str(tmp_path / "jwks.json"), "audiences": ["api://graphdir"]}]))
    app = build_app(load_settings(database_url=f"sqlite:///{tmp_path}/g.db", external_issuers_file=str(tmp_path / "issuers.json"), env={}))
    with TestClient(app) as client:
        graph = app.state.graph
        graph.store.put_tenant({"id": tid, "displayName": "Contoso (Entra)", "domain": "contoso.example", "props": {"domains": ["contoso.example"]}})
        now = int(time.time())
        claims = {"aud": "api://graphdir", "iss": f"https://login.microsoftonline.com/{tid}/v2.0", "tid": tid, "iat": now, "nbf": now,
                  "exp": now + 600, "azp": "c0ffee00-0000-4000-8000-000000000000", "roles": ["Group.Read.All"], "oid": "x", "ver": "2.0"}  # fmt: skip

        def get(claims: dict[str, Any], kid: str = "entra-key-1", key: Any = foreign) -> Any:
            tok = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
            return client.get("/v1.0/groups", headers={"Authorization": f"Bearer {tok}"})

        assert get(claims).status_code == 200
        assert get({**claims, "iss": f"https://sts.windows.net/{tid}/", "aud": "https://graph.microsoft.com"}).status_code == 200
        assert_graph_error(get({**claims, "iss": "https://login.microsoftonline.com/someone-else/v2.0"}), 401, "InvalidAuthenticationToken", MSG_ISSUER)
        assert_graph_error(get({**claims, "aud": "api://other"}), 401, "InvalidAuthenticationToken", MSG_AUDIENCE)
        # the external key is trusted for its tenant only
        default = graph.tenant["id"]
        assert_graph_error(get({**claims, "tid": default, "iss": f"https://sts.windows.net/{default}/"}), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
        assert_graph_error(get(claims, kid="unknown"), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
        assert_graph_error(get(claims, key=other_rsa_key.__wrapped__()), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)  # type: ignore[attr-defined]
        # graphdir's own tokens keep working alongside
        own = mint(graph.ring, default, app_id="x", roles=["Group.Read.All"])
        assert client.get("/v1.0/groups", headers={"Authorization": f"Bearer {own}"}).status_code == 200
