"""The Azure CLI, unmodified, against a live ``graphdir serve --tls``: ``az ad group create`` and
``az ad group member add/list/remove``, set up exactly as docs/identity.md#azure-cli says.

``az`` is installed into its own virtual environment, ``.venv-az``, by scripts/install-az.sh
(scripts/test.sh runs it; pinned by scripts/az-constraints.txt). Without it the test skips, saying
why. The CLI's state lives in a temporary ``AZURE_CONFIG_DIR``: the developer's own ``az`` login
and clouds are never touched.

This is issue 9's "tokens for a custom cloud": the CLI asks graphdir's token endpoint for a token
whose resource is graphdir's own address (``https://127.0.0.1:PORT//.default``, from
``--endpoint-microsoft-graph-resource-id``) and sends it to that address.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from live_tls import LiveTls, live_tls_server

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parent.parent
AZ = Path(os.environ.get("GRAPHDIR_TEST_AZ") or ROOT / ".venv-az" / "bin" / "az")
DOMAIN = "azcli.onmicrosoft.com"
PASSWORD = "xWwvJ]6NMw+bWH-d"

if not AZ.exists():
    pytest.skip(
        f"the Azure CLI is not installed at {AZ}: scripts/install-az.sh installs it (scripts/test.sh runs it; "
        "GRAPHDIR_SKIP_AZ=1 skips it, and an install that failed said why in the test run's output)",
        allow_module_level=True,
    )


@dataclass
class Az:
    live: LiveTls
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AZ), *args], env=self.env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, f"az {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout


@pytest.fixture(scope="module")
def az() -> Iterator[Az]:
    config = tempfile.mkdtemp(prefix="graphdir-az-")  # 0700; az keeps the service principal's secret there
    try:
        with live_tls_server(DOMAIN) as live:
            yield _logged_in(live, config)
    finally:
        shutil.rmtree(config, ignore_errors=True)


def _logged_in(live: LiveTls, config: str) -> Az:
    """The set-up of docs/identity.md#azure-cli, step by step."""
    app = json.loads(live.cli("app", "create", "--name", "azure cli", "--roles", "Group.ReadWrite.All,GroupMember.ReadWrite.All,User.Read.All",
                              "--json"))  # fmt: skip
    client_id = str(app["clientId"])
    secret = str(app["clientSecret"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHDIR_", "AZURE_"))}
    env.update(AZURE_CONFIG_DIR=config, REQUESTS_CA_BUNDLE=live.ca, AZURE_CORE_COLLECT_TELEMETRY="false", AZURE_CORE_NO_COLOR="true")
    a = Az(live, env)
    o = live.origin
    a.ok("cloud", "register", "--name", "graphdir", "--endpoint-active-directory", o,
         "--endpoint-active-directory-graph-resource-id", f"{o}/", "--endpoint-microsoft-graph-resource-id", f"{o}/",
         "--endpoint-active-directory-resource-id", f"{o}/", "--endpoint-resource-manager", f"{o}/", "--skip-endpoint-discovery")  # fmt: skip
    a.ok("cloud", "set", "--name", "graphdir")
    a.ok("config", "set", "core.instance_discovery=false")
    login = json.loads(a.ok("login", "--service-principal", "-u", client_id, "-p", secret, "--tenant", live.tenant_id,
                            "--allow-no-subscriptions", "--skip-subscription-discovery"))  # fmt: skip
    assert [(acc["tenantId"], acc["cloudName"], acc["user"]["name"]) for acc in login] == [(live.tenant_id, "graphdir", client_id)]
    return a


def test_az_ad_group_member_add_list_remove(az: Az) -> None:
    live = az.live
    ann = json.loads(live.cli("user", "create", "--upn", f"ann@{DOMAIN}", "--password", PASSWORD, "--json"))["id"]
    bob = json.loads(live.cli("user", "create", "--upn", f"bob@{DOMAIN}", "--password", PASSWORD, "--json"))["id"]

    group = json.loads(az.ok("ad", "group", "create", "--display-name", "Engineering", "--mail-nickname", "engineering"))
    assert (group["displayName"], group["mailNickname"], group["securityEnabled"]) == ("Engineering", "engineering", True)
    gid = group["id"]
    assert az.ok("ad", "group", "show", "--group", "Engineering", "--query", "id", "-o", "tsv").strip() == gid  # found by name ($filter)

    az.ok("ad", "group", "member", "add", "--group", "Engineering", "--member-id", ann)
    az.ok("ad", "group", "member", "add", "--group", gid, "--member-id", bob)
    listed = json.loads(az.ok("ad", "group", "member", "list", "--group", gid))
    assert sorted(m["id"] for m in listed) == sorted([ann, bob])
    assert {m["userPrincipalName"] for m in listed} == {f"ann@{DOMAIN}", f"bob@{DOMAIN}"}
    assert live.members(gid) == sorted([ann, bob])  # what graphdir holds, read without az

    twice = az.run("ad", "group", "member", "add", "--group", gid, "--member-id", ann)  # Graph's 400 for an existing member
    assert twice.returncode != 0 and "already exist" in twice.stderr, twice

    az.ok("ad", "group", "member", "remove", "--group", gid, "--member-id", ann)
    assert [m["id"] for m in json.loads(az.ok("ad", "group", "member", "list", "--group", gid))] == [bob]
    assert live.members(gid) == [bob]

    az.ok("ad", "group", "delete", "--group", gid)
    assert json.loads(az.ok("ad", "group", "list", "--display-name", "Engineering")) == []


def test_az_token_names_graphdir_as_graph(az: Az) -> None:
    """The token az gets for its Graph resource (graphdir's own address) has that address as aud and works on Graph."""
    o = az.live.origin
    tok = json.loads(az.ok("account", "get-access-token", "--resource", f"{o}/"))
    part = tok["accessToken"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert claims["aud"] == o
    assert claims["tid"] == az.live.tenant_id
    with az.live.http(tok["accessToken"]) as c:
        assert c.get("/v1.0/groups").status_code == 200
