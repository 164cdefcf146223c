"""The command line as a new user meets it (issue 9, "Command line"): checked settings, one-line
errors with exit code 2 for user mistakes, failing commands that leave nothing behind, an
idempotent ``seed``, a default database independent of the working directory, camelCase
``--json`` and a help line for every option (docs/cli.md, docs/configuration.md, docs/seeding.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jwt
import pytest
from click.testing import CliRunner, Result

from graphdir.cli import main
from graphdir.settings import Settings, load_settings
from graphdir.store.sqlite import SqliteStore

PASSWORD = "Str0ng-Passw0rd!"
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No GRAPHDIR_* from the caller; XDG_DATA_HOME in tmp_path; the working directory elsewhere."""
    for name in list(os.environ):
        if name.startswith("GRAPHDIR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.fixture
def db(env: Path) -> str:
    url = f"sqlite:///{env / 'g.db'}"
    ok("migrate", "--db", url)
    return url


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    # catch_exceptions=False: a Python traceback would fail the test
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result: Result, *words: str) -> str:
    """Exit code 2 and exactly one line ``Error: …`` that contains ``words``."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def opened(url: str) -> SqliteStore:
    store = SqliteStore(Path(url[len("sqlite:///"):]))
    store.open()
    return store


# -- 1. settings ---------------------------------------------------------------------------------------------------
def test_unrecognised_boolean_is_refused() -> None:
    with pytest.raises(ValueError, match=r"GRAPHDIR_TLS='maybe': expected a boolean"):
        load_settings(env={"GRAPHDIR_TLS": "maybe"})
    assert load_settings(env={"GRAPHDIR_TLS": "Off"}).tls is False and load_settings(env={"GRAPHDIR_TLS": "yes"}).tls is True
    with pytest.raises(ValueError, match=r"GRAPHDIR_PORT='eighty': expected an integer"):
        load_settings(env={"GRAPHDIR_PORT": "eighty"})


@pytest.mark.parametrize(("text", "message"), [
    ('port = "8080"', "setting 'port' must be an integer, got '8080'"),
    ("tls = 1", "setting 'tls' must be a boolean (true/false), got 1"),
    ("default_domain = 5", "setting 'default_domain' must be a string, got 5"),
    ("checkpoint_interval = true", "setting 'checkpoint_interval' must be a number, got True"),
    ("bogus = 1", "unknown setting 'bogus'"),
    ("port = ", "is not valid TOML"),
])  # fmt: skip
def test_settings_file_values_are_type_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "graphdir.toml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_settings(path, env={})


@pytest.mark.parametrize(("env", "message"), [
    ({"GRAPHDIR_MAIL_ENABLED_SECURITY_MEMBERSHIP": "sometimes"}, "mail_enabled_security_membership must be 'allow' or 'refuse'"),
    ({"GRAPHDIR_TOP_OVER_MAX": "wrap"}, "top_over_max must be 'error' or 'cap'"),
    ({"GRAPHDIR_PORT": "70000"}, "port must be between 0 and 65535, got 70000"),
    ({"GRAPHDIR_CHECKPOINT_INTERVAL": "soon"}, "GRAPHDIR_CHECKPOINT_INTERVAL='soon': expected a number"),
    ({"GRAPHDIR_DATABASE_URL": "sqlite:///"}, "unsupported database URL 'sqlite:///'"),
])  # fmt: skip
def test_settings_values_are_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_settings(env=env)


def test_settings_file_that_is_a_directory_or_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        load_settings(tmp_path, env={})
    path = tmp_path / "g.toml"
    path.write_text("graphdir = 5\n")
    with pytest.raises(ValueError, match=r"\[graphdir\] must be a table"):
        load_settings(path, env={})


def test_settings_file_values_of_the_right_type(tmp_path: Path) -> None:
    path = tmp_path / "graphdir.toml"
    path.write_text("[graphdir]\nport = 9000\ntls = true\ncheckpoint_interval = 2\n")
    s = load_settings(path, env={})
    assert (s.port, s.tls, s.checkpoint_interval) == (9000, True, 2.0) and isinstance(s.checkpoint_interval, float)


# -- 2. no tracebacks for user mistakes: one line, exit code 2 ----------------------------------------------------
def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("case", "words"), [
    ("serve --port 99999", ("--port", "99999")),
    ("serve --config missing.toml", ("missing.toml", "does not exist")),
    ("serve --config unknown.toml", ("unknown setting 'colour'",)),
    ("serve --config typed.toml", ("'port' must be an integer",)),
    ("serve --db mysql://localhost/graphdir", ("unsupported database URL", "mysql://", "postgresql://")),
    ("token --db mysql://localhost/graphdir", ("unsupported database URL",)),
    ("serve --workers 2", ("workers > 1 needs a postgresql:// database", "one writer")),
    ("serve --workers 0", ("workers must be at least 1, got 0",)),
    ("token --lifetime -100", ("--lifetime", "-100")),
    ("token --lifetime 0", ("--lifetime",)),
    ("seed bad.json", ("bad.json", "not valid JSON")),
    ("seed number.json", ("a seed is a list of objects",)),
    ("seed tenants.json", ("tenants", "expected a JSON list")),
    ("seed typed.json", ("[0]", "Invalid value specified for property 'displayName'")),
    ("seed unknown-prop.json", ("[0]", "colour")),
    ("seed nowhere.json", ("nowhere.json", "cannot read")),
    ("tenant create --name X --domain not_a_domain", ("--domain", "not a domain name")),
    ("tenant create --name X --domain nodot", ("--domain", "not a domain name")),
    ("nosuchcommand", ("No such command",)),
])  # fmt: skip
def test_user_mistakes_are_one_line_and_exit_2(env: Path, case: str, words: tuple[str, ...]) -> None:
    _write(Path("unknown.toml"), "colour = 'blue'\n")
    _write(Path("typed.toml"), "port = 'x'\n")
    _write(Path("bad.json"), '[{"type": "group",')
    _write(Path("number.json"), "5")
    _write(Path("tenants.json"), '{"tenants": 3}')
    _write(Path("typed.json"), '[{"type": "group", "displayName": 5}]')
    _write(Path("unknown-prop.json"), '[{"type": "device", "displayName": "d", "colour": "red"}]')
    one_line_error(run(*case.split()), *words)
    assert not (env / "data").exists()  # nothing was created


def test_a_password_in_a_database_url_is_never_printed(env: Path) -> None:
    done = run("serve", "--db", "mysql://graph:s3cret@db.example/graphdir")
    one_line_error(done, "unsupported database URL", "mysql://graph:***@db.example/graphdir")
    assert "s3cret" not in done.stdout + done.stderr


def test_databases_that_cannot_be_opened(env: Path) -> None:
    (env / "afile").write_text("x")
    one_line_error(run("migrate", "--db", f"sqlite:///{env}/afile/g.db"), "cannot open the database", "Not a directory")
    (env / "notdb.db").write_text("not a database, but long enough to have a header" * 100)
    one_line_error(run("token", "--db", f"sqlite:///{env}/notdb.db"), "cannot open the database", "not a database")
    assert (env / "notdb.db").exists()  # not ours to remove


def test_unrecognised_boolean_on_the_command_line(env: Path) -> None:
    one_line_error(run("token", env={"GRAPHDIR_TLS": "maybe"}), "GRAPHDIR_TLS='maybe'", "expected a boolean")


def test_serve_bad_port_in_a_real_process(env: Path) -> None:
    script = Path(sys.executable).parent / "graphdir"  # the installed console script
    proc = subprocess.run([str(script), "serve", "--port", "99999"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["Error: Invalid value for '--port': 99999 is not in the range 0<=x<=65535. (see 'graphdir serve --help')"]


# -- 3. failing commands leave nothing behind; seed is idempotent ---------------------------------------------------
def test_user_create_with_unknown_role_creates_nothing(db: str) -> None:
    one_line_error(run("user", "create", "--db", db, "--upn", "nope@contoso.onmicrosoft.com", "--password", PASSWORD, "--role", "Nope"),
                   "--role", "unknown directory role 'Nope'")  # fmt: skip
    store = opened(db)
    try:
        tid = store.sync(store.get_meta("default_tenant"))
        assert tid and store.sync(store.get_by_upn(tid, "nope@contoso.onmicrosoft.com")) is None
    finally:
        store.close()
    out = json.loads(ok("user", "create", "--db", db, "--upn", "nope@contoso.onmicrosoft.com", "--password", PASSWORD,
                        "--role", "Groups Administrator", "--json"))
    assert out["roles"] == ["Groups Administrator"] and out["userPrincipalName"] == "nope@contoso.onmicrosoft.com"


SEED: dict[str, Any] = {"tenants": [
    {"displayName": "Fabrikam", "domain": "fabrikam.onmicrosoft.com",
     "applications": [{"displayName": "daemon", "roles": ["GroupMember.ReadWrite.All"]}],
     "users": [{"userPrincipalName": "alice@fabrikam.onmicrosoft.com", "password": PASSWORD, "roles": ["Groups Administrator"]}],
     "objects": [{"type": "group", "displayName": "Sales", "mailEnabled": False, "securityEnabled": True, "groupTypes": [],
                  "members": ["alice@fabrikam.onmicrosoft.com"], "owners": ["alice@fabrikam.onmicrosoft.com"]}]},
    {"default": True, "objects": [{"type": "device", "displayName": "Laptop"},
                                  {"id": "0b7d6a3e-52a4-4b8e-9a2c-5d2f8b1e9c11", "type": "orgContact", "displayName": "Eve"}]},
]}  # fmt: skip


def _counts(db: str) -> dict[str, int]:
    store = opened(db)
    try:
        out: dict[str, int] = {}
        for t in store.sync(store.list_tenants()):
            out[t["domain"] + " apps"] = len(store.sync(store.list_applications(t["id"])))
            out[t["domain"] + " roles"] = len(store.sync(store.list_role_assignments(t["id"])))
            for kind in ("user", "group", "device", "orgContact"):
                page = store.sync(store.list_objects(t["id"], (kind,), __import__("graphdir.query").query.ListQuery(top=999)))
                out[f"{t['domain']} {kind}"] = len(page.items)
        out["tenants"] = len(store.sync(store.list_tenants()))
        return out
    finally:
        store.close()


def test_seed_twice_changes_nothing(db: str, env: Path) -> None:
    path = _write(env / "seed.json", json.dumps(SEED))
    first = ok("seed", "--db", db, path)
    before = _counts(db)
    assert before["tenants"] == 2 and before["fabrikam.onmicrosoft.com apps"] == 1 and before["fabrikam.onmicrosoft.com roles"] == 1
    assert before["contoso.onmicrosoft.com device"] == 1 and before["contoso.onmicrosoft.com orgContact"] == 1
    second = ok("seed", "--db", db, path)
    assert _counts(db) == before
    lines = second.strip().splitlines()
    assert len(lines) == len(first.strip().splitlines()) == 7
    assert all(line.endswith("exists") or "exists (left as it is)" in line for line in lines), second
    # the first run's ids are reported again
    assert [line.split("\t")[1] for line in lines] == [line.split("\t")[1] for line in first.strip().splitlines()]


def test_invalid_seed_writes_nothing(db: str, env: Path) -> None:
    before = _counts(db)
    bad = json.loads(json.dumps(SEED))
    bad["tenants"][1]["objects"].append({"type": "group", "displayName": "G", "members": ["nobody@contoso.onmicrosoft.com"]})
    one_line_error(run("seed", "--db", db, _write(env / "bad.json", json.dumps(bad))), "tenants[1].objects[2].members", "nobody@contoso.onmicrosoft.com")
    wrong_domain = [{"userPrincipalName": "bob@fabrikam.com", "password": PASSWORD}]
    one_line_error(run("seed", "--db", db, _write(env / "dom.json", json.dumps(wrong_domain))), "[0]", "verified domain")
    bad_role = [{"type": "device", "displayName": "ok"}, {"userPrincipalName": "r@contoso.onmicrosoft.com", "roles": ["Chief Wizard"]}]
    one_line_error(run("seed", "--db", db, _write(env / "role.json", json.dumps(bad_role))), "[1].roles", "Chief Wizard")
    assert _counts(db) == before


FABRIKAM = {"displayName": "Fabrikam", "domain": "fabrikam.onmicrosoft.com"}


@pytest.mark.parametrize(("seed", "words"), [
    ({"tenants": [{**FABRIKAM, "colour": "blue"}]}, ("tenants[0]", "unknown key 'colour'")),
    ({"tenants": [{"domain": 5}]}, ("tenants[0]", "'domain' and 'displayName' must be strings")),
    ({"tenants": [{**FABRIKAM, "id": "fabrikam"}]}, ("tenants[0]", "tenant id must be a GUID")),
    ({"tenants": [{**FABRIKAM, "domain": "not a domain"}]}, ("tenants[0]", "not a domain name")),
    ({"tenants": [FABRIKAM, {**FABRIKAM, "domain": "other.onmicrosoft.com", "domains": ["fabrikam.onmicrosoft.com"]}]},
     ("tenants[1]", "fabrikam.onmicrosoft.com is given to two tenants")),
    ({"tenants": [{**FABRIKAM, "domain": "new.onmicrosoft.com", "domains": ["contoso.onmicrosoft.com"]}]},
     ("tenants[0]", "contoso.onmicrosoft.com already belongs to tenant")),
    ({"tenants": [{"id": "5e0c9a7b-1111-4222-8333-944445555666", "default": True}]}, ("tenants[0]", "no tenant")),
    ({"tenants": [{"default": True}, {"default": True}]}, ("tenants[1]", "is given twice")),
    ({"tenants": [], "objects": []}, ("a seed with 'tenants' has no other top-level key",)),
    ({"tenants": [{**FABRIKAM, "applications": [{"displayName": "a", "colour": 1}]}]}, ("tenants[0].applications[0]", "unknown key 'colour'")),
    ({"tenants": [{**FABRIKAM, "applications": [{"roles": []}]}]}, ("applications[0]", "'displayName' (a string) is required")),
    ({"tenants": [{**FABRIKAM, "applications": [{"displayName": "a", "appId": "x"}]}]}, ("applications[0]", "'appId' must be a GUID")),
    ({"tenants": [{**FABRIKAM, "applications": [{"displayName": "a", "secret": 5}]}]}, ("applications[0]", "'secret' must be a string")),
    ({"tenants": [{**FABRIKAM, "applications": [{"displayName": "a"}, {"displayName": "A"}]}]}, ("applications[1]", "given twice")),
    ({"tenants": [{**FABRIKAM, "applications": [{"displayName": "a", "roles": [1]}]}]}, ("applications[0].roles", "expected a list of strings")),
    ({"tenants": [{**FABRIKAM, "users": ["alice"]}]}, ("tenants[0].users[0]", "expected a user")),
    ([{"type": "device", "displayName": "d", "members": []}, {"type": "device", "displayName": "e", "owners": ["d"]}], ("[1].owners",)),
    ([{"type": "user", "displayName": "u"}, {"type": "device", "displayName": "d", "members": ["u"]}], ("[1].members",)),
    ([{"type": "device", "displayName": "d", "id": "0b7d6a3e-52a4-4b8e-9a2c-5d2f8b1e9c12"},
      {"type": "user", "displayName": "u", "members": ["0b7d6a3e-52a4-4b8e-9a2c-5d2f8b1e9c12"]}], ("[1]", "only groups have members and owners")),
    ([{"type": "device", "displayName": "d", "password": "x"}], ("[0]", "'password'")),
    ([{"type": "device", "deviceId": "x"}], ("[0]", "displayName value is required")),
    ([{"userPrincipalName": "@contoso.onmicrosoft.com"}], ("[0]", "'userPrincipalName'")),
    ([{"userPrincipalName": "a@contoso.onmicrosoft.com"}, {"userPrincipalName": "A@contoso.onmicrosoft.com"}], ("[1]", "given twice")),
])  # fmt: skip
def test_invalid_seeds_are_refused_whole(db: str, env: Path, seed: Any, words: tuple[str, ...]) -> None:
    before = _counts(db)
    one_line_error(run("seed", "--db", db, _write(env / "seed.json", json.dumps(seed))), *words)
    assert _counts(db) == before


def test_seed_from_standard_input(db: str) -> None:
    result = CliRunner().invoke(main, ["seed", "--db", db, "-"], input=json.dumps([{"type": "device", "displayName": "From stdin"}]))
    assert result.exit_code == 0 and result.output.startswith("tenant\t") and "\tFrom stdin\n" in result.output, result.output


def test_seed_keys_of_applications_and_users(db: str, env: Path) -> None:
    seed = {"tenants": [{"default": True,
                         "applications": [{"displayName": "a", "appId": "aaaaaaaa-1111-4222-8333-944445555666", "secret": False}],
                         "objects": [{"type": "user", "id": "0b7d6a3e-52a4-4b8e-9a2c-5d2f8b1e9c13", "displayName": "By id"}]}]}  # fmt: skip
    path = _write(env / "seed.json", json.dumps(seed))
    assert "secret: (none)" in ok("seed", "--db", db, path)
    before = _counts(db)
    again = ok("seed", "--db", db, path)
    assert "aaaaaaaa-1111-4222-8333-944445555666\ta\tsecret: exists" in again and "0b7d6a3e-52a4-4b8e-9a2c-5d2f8b1e9c13\tBy id\texists" in again
    assert _counts(db) == before


def test_seed_refers_to_objects_of_the_same_file_and_existing_ones(db: str, env: Path) -> None:
    first = [{"userPrincipalName": "u1@contoso.onmicrosoft.com"}]
    ok("seed", "--db", db, _write(env / "one.json", json.dumps(first)))
    second = [{"userPrincipalName": "u2@contoso.onmicrosoft.com"},
              {"type": "group", "displayName": "Both", "members": ["u1@contoso.onmicrosoft.com", "U2@contoso.onmicrosoft.com"]}]  # fmt: skip
    out = ok("seed", "--db", db, _write(env / "two.json", json.dumps(second)))
    gid = next(line.split("\t")[1] for line in out.splitlines() if line.startswith("group\t"))
    store = opened(db)
    try:
        tid = store.sync(store.get_meta("default_tenant"))
        assert tid is not None
        u1, u2 = store.sync(store.get_by_upn(tid, "u1@contoso.onmicrosoft.com")), store.sync(store.get_by_upn(tid, "u2@contoso.onmicrosoft.com"))
        assert u1 and u2 and store.sync(store.is_member(tid, gid, u1.id)) and store.sync(store.is_member(tid, gid, u2.id))
    finally:
        store.close()


# -- 5. smaller leniencies and --json ------------------------------------------------------------------------------------
def test_token_lifetime_must_be_positive(db: str) -> None:
    one_line_error(run("token", "--db", db, "--lifetime", "-100"), "--lifetime")
    tok = ok("token", "--db", db, "--lifetime", "60").strip()
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60


def test_json_outputs_are_camel_case_with_null(db: str) -> None:
    camel = re.compile(r"^[a-z][A-Za-z]*$")
    tenants = json.loads(ok("tenant", "list", "--db", db, "--json"))
    assert isinstance(tenants, list) and tenants[0]["default"] is True and "id" in tenants[0]
    created = json.loads(ok("tenant", "create", "--db", db, "--name", "Fabrikam", "--domain", "Fabrikam.onmicrosoft.com", "--json"))
    assert created["domain"] == "fabrikam.onmicrosoft.com"
    listed = json.loads(ok("tenant", "list", "--db", db, "--json"))
    assert [t["id"] for t in listed] == [tenants[0]["id"], created["id"]]  # the default tenant first
    daemon = json.loads(ok("app", "create", "--db", db, "--name", "daemon", "--roles", "A,B", "--json"))
    assert daemon["clientId"] and len(daemon["clientSecret"]) == 40 and daemon["roles"] == ["A", "B"]
    public = json.loads(ok("app", "create", "--db", db, "--name", "cli", "--public-client", "--no-secret", "--json"))
    assert public["clientSecret"] is None
    user = json.loads(ok("user", "create", "--db", db, "--upn", "a@contoso.onmicrosoft.com", "--password", PASSWORD, "--json"))
    apps_listed = json.loads(ok("app", "list", "--db", db))
    for obj in [*listed, created, daemon, public, user, *apps_listed]:
        assert all(camel.match(k) for k in obj), obj
    assert "(none)" in ok("app", "create", "--db", db, "--name", "text", "--no-secret")  # the text form keeps its wording


# -- 6. the default database: independent of the working directory; read-only commands never create one ----------------
def test_default_database_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings(env={"XDG_DATA_HOME": str(tmp_path)}).database_url == f"sqlite:///{tmp_path}/graphdir/graphdir.db"
    home = Path.home()
    assert load_settings(env={}).database_url == f"sqlite:///{home}/.local/share/graphdir/graphdir.db"
    assert load_settings(env={"XDG_DATA_HOME": "relative/dir"}).database_url == f"sqlite:///{home}/.local/share/graphdir/graphdir.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert Settings().sqlite_path == tmp_path / "x" / "graphdir" / "graphdir.db"
    assert Settings().data_dir == tmp_path / "x" / "graphdir"
    other = Settings(database_url="postgresql://db/graphdir")  # not through load_settings, which refuses it
    assert other.data_dir == tmp_path / "x" / "graphdir"
    with pytest.raises(ValueError, match="not a sqlite URL"):
        other.sqlite_path  # noqa: B018


def test_tokens_from_another_directory_use_the_same_database(env: Path) -> None:
    ok("migrate")
    first = jwt.decode(ok("token").strip(), options={"verify_signature": False})
    elsewhere = env / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    again = jwt.decode(ok("token").strip(), options={"verify_signature": False})
    assert again["tid"] == first["tid"]
    assert (env / "data" / "graphdir" / "graphdir.db").exists() and not (env / "work" / ".graphdir").exists()


@pytest.mark.parametrize("command", ["token", "tenant list", "app list", "keys list", "role list", "ca-path", "keys rotate",
                                     "app add-secret --app x", "role assign --user a@b.c --role x"])  # fmt: skip
def test_read_only_commands_refuse_to_create_a_database(env: Path, command: str) -> None:
    where = env / "data" / "graphdir" / "graphdir.db"
    one_line_error(run(*command.split()), f"no graphdir database at {where}", "graphdir migrate")
    one_line_error(run(*command.split(), "--db", f"sqlite:///{env}/other.db"), f"no graphdir database at {env}/other.db")
    assert not where.exists() and not (env / "other.db").exists() and not (env / "data").exists()


# -- 7. help for every option; the docs name every command and option ---------------------------------------------------------
def _commands(group: click.Group, prefix: str = "graphdir") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)


def test_every_option_has_a_help_line() -> None:
    missing = [f"{path} {opt.opts[0]}" for path, cmd in _commands(main) for opt in cmd.params
               if isinstance(opt, click.Option) and not (opt.help or "").strip()]  # fmt: skip
    assert missing == []
    assert all((cmd.help or "").strip() for _, cmd in _commands(main))


def test_help_texts_say_what_the_code_does() -> None:
    rotate = ok("keys", "rotate", "--help")
    assert "max(token_lifetime, 1 day)" in rotate and "until they expire" not in rotate
    serve = " ".join(ok("serve", "--help").split())
    assert "8080" in serve and "--tls" in serve


def test_docs_cli_names_every_command_and_option() -> None:
    text = (DOCS / "cli.md").read_text()
    for path, cmd in _commands(main):
        assert f"`{path}" in text, path
        for opt in cmd.params:
            if isinstance(opt, click.Option):
                assert f"`{opt.opts[0]}" in text, (path, opt.opts[0])
    assert "scripts/serve.sh" in text and "8080" in text


def test_docs_configuration_names_every_setting() -> None:
    from dataclasses import fields

    text = (DOCS / "configuration.md").read_text()
    for f in fields(Settings):
        assert f"`{f.name}`" in text, f.name
    assert "$XDG_DATA_HOME/graphdir/graphdir.db" in text
