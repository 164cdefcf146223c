"""Helpers for the conformance suite: the live-server handle, SDK clients (docs/behaviour.md#credentials-and-tls), factories, error checks."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from sdk_helpers import close_sdk_client

#: UPN domain of the tenant; set explicitly so the suite does not depend on defaults.
DOMAIN = "conformance.onmicrosoft.com"
STARTUP_TIMEOUT = 60.0
MISSING_MESSAGE = "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
DUPLICATE_MEMBERS_MESSAGE = "One or more added object references already exist for the following modified properties: 'members'."
LAST_OWNER_MESSAGE = "The group must have at least one owner, hence this owner cannot be removed."
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
READ_ONLY_GROUP_MESSAGE = "Cannot Update a mail-enabled security groups and or distribution list."


# --------------------------------------------------------------------------------------------
# the live server
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    origin: str  # http://127.0.0.1:PORT
    tenant_id: str
    token: str  # the serve token (Directory/Group/GroupMember/User.ReadWrite.All + Graphdir.Admin)
    db_url: str
    workdir: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    def mint_token(self, roles: str) -> str:
        """``graphdir token --db <same db> --roles A,B`` for the same tenant."""
        proc = subprocess.run(
            [sys.executable, "-m", "graphdir", "token", "--db", self.db_url, "--roles", roles],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"graphdir token failed: {proc.stderr}"
        token = proc.stdout.strip().splitlines()[-1].strip()
        assert token.count(".") == 2, f"graphdir token printed no JWT: {proc.stdout!r}"
        return token

    def mint_delegated_token(self, user: str, scopes: str) -> str:
        """``graphdir token --db <same db> --user U --scopes "A B"``: a delegated token signed in as ``user`` (for ``/me``)."""
        proc = subprocess.run(
            [sys.executable, "-m", "graphdir", "token", "--db", self.db_url, "--user", user, "--scopes", scopes],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"graphdir token --user failed: {proc.stderr}"
        token = proc.stdout.strip().splitlines()[-1].strip()
        assert token.count(".") == 2, f"graphdir token printed no JWT: {proc.stdout!r}"
        return token

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST {origin}/graphdir/admin/seed`` with the serve token (objects Graph cannot create)."""
        r = httpx.post(f"{self.origin}/graphdir/admin/seed", json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert r.status_code == 201, f"seed {body} -> {r.status_code} {r.text}"
        return r.json()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Terminate the server we started: its pid, then its own process group (granian workers)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    try:  # workers left behind in the group we created (start_new_session=True → pgid == proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------------------------
# the SDKs
# --------------------------------------------------------------------------------------------


def _static_provider_class() -> type:
    from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

    class StaticTokenProvider(AccessTokenProvider):  # as in docs/behaviour.md#credentials-and-tls
        def __init__(self, token: str) -> None:
            self._t, self._v = token, AllowedHostsValidator([])  # [] = every host

        async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:  # noqa: B006
            return self._t

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return self._v

    return StaticTokenProvider


def make_client(pkg: ModuleType, base: str, api: str, token: str) -> Any:
    from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider

    adapter = pkg.GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(_static_provider_class()(token)))
    adapter.base_url = f"{base}/{api}"
    return pkg.GraphServiceClient(request_adapter=adapter)


class Flavour:
    """One SDK (msgraph for /v1.0, msgraph_beta for /beta) plus the model classes the tests use."""

    def __init__(self, name: str, server: Server) -> None:
        import importlib

        self.pkg_name = {"v1.0": "msgraph", "beta": "msgraph_beta"}[name]
        self.api = name
        self.server = server
        pkg = importlib.import_module(self.pkg_name)
        self.pkg = pkg

        def imp(mod: str, attr: str) -> Any:
            return getattr(importlib.import_module(f"{self.pkg_name}.generated.{mod}"), attr)

        from kiota_abstractions.base_request_configuration import RequestConfiguration

        self.RequestConfiguration = RequestConfiguration
        self.User = imp("models.user", "User")
        self.Group = imp("models.group", "Group")
        self.PasswordProfile = imp("models.password_profile", "PasswordProfile")
        self.ReferenceCreate = imp("models.reference_create", "ReferenceCreate")
        self.ODataError = imp("models.o_data_errors.o_data_error", "ODataError")
        self.MembersGetQuery = imp("groups.item.members.members_request_builder", "MembersRequestBuilder").MembersRequestBuilderGetQueryParameters
        self.RefDeleteQuery = imp("groups.item.members.ref.ref_request_builder", "RefRequestBuilder").RefRequestBuilderDeleteQueryParameters
        self.GroupGetQuery = imp("groups.item.group_item_request_builder", "GroupItemRequestBuilder").GroupItemRequestBuilderGetQueryParameters
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Flavour({self.api})"

    async def aclose(self) -> None:
        """Close the httpx client inside every SDK adapter this flavour made."""
        for client in self._clients.values():
            await close_sdk_client(client)
        self._clients.clear()

    def client(self, token: str | None = None) -> Any:
        token = self.server.token if token is None else token
        if token not in self._clients:
            self._clients[token] = make_client(self.pkg, self.server.origin, self.api, token)
        return self._clients[token]

    @property
    def graph(self) -> Any:
        """The client with the serve token."""
        return self.client()

    def odata_id(self, object_id: str, segment: str = "directoryObjects") -> str:
        """The documented reference form: ``https://graph.microsoft.com/{api}/directoryObjects/{id}``."""
        return f"https://graph.microsoft.com/{self.api}/{segment}/{object_id}"


# --------------------------------------------------------------------------------------------
# helpers shared by the test modules
# --------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Factory:
    """Creates directory objects through the SDK (or the seed endpoint) for one flavour."""

    def __init__(self, flavour: Flavour, run: Callable[[Awaitable[Any]], Any]) -> None:
        self.f, self.run = flavour, run

    def user(self, name: str | None = None) -> Any:
        nick = unique(name or "user")
        f = self.f
        body = f.User(
            account_enabled=True,
            display_name=f"Conf {nick}",
            mail_nickname=nick,
            user_principal_name=f"{nick}@{DOMAIN}",
            password_profile=f.PasswordProfile(force_change_password_next_sign_in=False, password="xWwvJ]6NMw+bWH-d"),
        )
        created = self.run(f.graph.users.post(body))
        assert isinstance(created, f.User), type(created)
        assert created.id, "POST /users returned no id"
        assert created.user_principal_name == f"{nick}@{DOMAIN}"
        return created

    def users(self, n: int) -> list[Any]:
        return [self.user() for _ in range(n)]

    def _group(self, **kw: Any) -> Any:
        f = self.f
        nick = unique(kw.pop("nick", "grp"))
        body = f.Group(display_name=f"Conf {nick}", mail_nickname=nick, **kw)
        created = self.run(f.graph.groups.post(body))
        assert isinstance(created, f.Group), type(created)
        assert created.id, "POST /groups returned no id"
        assert created.display_name == f"Conf {nick}"
        return created

    def security_group(self) -> Any:
        return self._group(nick="sec", description="conformance security group", group_types=[], mail_enabled=False, security_enabled=True)

    def m365_group(self) -> Any:
        return self._group(nick="m365", group_types=["Unified"], mail_enabled=True, security_enabled=False, visibility="Private")

    def dynamic_group(self) -> Any:
        return self._group(
            nick="dyn",
            group_types=["DynamicMembership"],
            mail_enabled=False,
            security_enabled=True,
            membership_rule='(user.department -eq "Conformance")',
            membership_rule_processing_state="On",
        )

    def distribution_group(self, members: list[str] | None = None) -> dict[str, Any]:
        nick = unique("dl")
        body: dict[str, Any] = {"type": "group", "displayName": f"Conf {nick}", "mailEnabled": True, "securityEnabled": False, "mailNickname": nick}
        if members:
            body["members"] = members
        obj = self.f.server.seed(body)
        assert obj.get("id"), obj
        return obj


def expect_odata_error(
    flavour: Flavour, run: Callable[[Awaitable[Any]], Any], awaitable: Awaitable[Any], status: int, code: str, message: str | None = None
) -> Any:
    """Run ``awaitable``; it must raise the flavour's ODataError with this status, code (and exact message)."""
    with pytest.raises(flavour.ODataError) as info:
        run(awaitable)
    err = info.value
    got = f"{err.error.code}: {err.error.message}" if err.error else "no error body"
    assert err.response_status_code == status, f"status: expected {status}, got {err.response_status_code} ({got})"
    assert err.error is not None, "ODataError without an error object"
    assert err.error.code == code, f"code: expected {code!r}, got {err.error.code!r} (message {err.error.message!r})"
    if message is not None:
        assert err.error.message == message, f"message: expected {message!r}, got {err.error.message!r}"
    # docs/behaviour.md#error-body: innerError carries request-id, client-request-id (= request-id when the client sent none) and date
    inner = err.error.inner_error
    assert inner is not None, "error body has no innerError"
    assert inner.request_id, "innerError has no request-id"
    assert inner.client_request_id == inner.request_id, (inner.client_request_id, inner.request_id)
    assert isinstance(inner.date, datetime.datetime), f"innerError.date not a date: {inner.date!r}"
    return err


def collect_pages(flavour: Flavour, run: Callable[[Awaitable[Any]], Any], first: Any, builder: Any) -> tuple[list[Any], list[str]]:
    """Follow ``@odata.nextLink`` with ``builder.with_url(link)`` until the last page; return (items, links)."""
    items, links = list(first.value or []), []
    page = first
    while page.odata_next_link:
        links.append(page.odata_next_link)
        assert len(links) < 100, "nextLink loop"
        page = run(builder.with_url(page.odata_next_link).get())
        items.extend(page.value or [])
    return items, links
