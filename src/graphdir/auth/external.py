"""Trusting an external token issuer for a tenant (e.g. the real Entra ID tenant behind it).

A self-hosted graphdir can accept tokens that Entra ID itself issued for a
tenant: the setting ``external_issuers_file`` names a JSON file with one entry
per trusted tenant::

    [{"tenant_id": "72f988bf-…",
      "openid_configuration": "https://login.microsoftonline.com/72f988bf-…/v2.0/.well-known/openid-configuration",
      "audiences": ["api://graphdir"]}]

Each entry takes its signing keys from ``jwks_uri`` (a URL) or ``jwks_file`` (a
JSON Web Key Set on disk), or from the ``jwks_uri`` that ``openid_configuration``
(URL or file) names. ``issuers`` defaults to Entra's two issuer forms for the
tenant (``https://sts.windows.net/{tid}/`` and
``https://login.microsoftonline.com/{tid}/v2.0``); ``audiences`` are accepted in
addition to Graph's own.

Caveat (documented Entra behaviour): access tokens Entra issues *for Microsoft
Graph* carry a ``nonce`` JOSE header and cannot be verified by anyone but Graph.
Register an API for graphdir in Entra (e.g. ``api://graphdir`` with app roles and
scopes named like Graph's permissions) and request tokens for that audience.

Keys fetched from a URL are cached; an unknown ``kid`` triggers a refetch at most
every ``refetch_interval`` seconds (key rollover without a restart).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwt import PyJWK, PyJWKError

log = logging.getLogger("graphdir.auth")


def _read(source: str, timeout: float = 10.0) -> Any:
    """JSON from an ``https://``/``http://`` URL or a file path (``file://`` accepted)."""
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=timeout) as resp:  # noqa: S310 - configured by the operator
            return json.loads(resp.read())
    path = source[len("file://"):] if source.startswith("file://") else source
    return json.loads(Path(path).read_text())


@dataclass
class ExternalIssuer:
    tenant_id: str
    jwks_source: str
    issuers: tuple[str, ...]
    audiences: tuple[str, ...] = ()
    refetch_interval: float = 300.0
    _keys: dict[str, Any] = field(default_factory=dict)
    _fetched: float = 0.0

    def load_keys(self) -> None:
        self._fetched = time.monotonic()
        try:
            jwks = _read(self.jwks_source)
        except (OSError, ValueError) as exc:
            log.warning("cannot read the JWKS of external issuer for tenant %s from %s: %s", self.tenant_id, self.jwks_source, exc)
            return
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if jwk.get("kty") != "RSA" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = PyJWK(jwk, algorithm="RS256").key
            except PyJWKError:
                continue
        self._keys = keys

    def public_key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._fetched >= self.refetch_interval:
            self.load_keys()
            key = self._keys.get(kid)
        return key


def load_external_issuers(path: str) -> dict[str, ExternalIssuer]:
    """Read ``external_issuers_file``; an empty path means none."""
    if not path:
        return {}
    entries = _read(path)
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of external issuers")
    out: dict[str, ExternalIssuer] = {}
    for e in entries:
        tid = str(e["tenant_id"]).lower()
        source = e.get("jwks_uri") or e.get("jwks_file")
        if not source and e.get("openid_configuration"):
            source = _read(str(e["openid_configuration"]))["jwks_uri"]
        if not source:
            raise ValueError(f"{path}: tenant {tid} needs jwks_uri, jwks_file or openid_configuration")
        issuers = tuple(e.get("issuers") or (f"https://sts.windows.net/{tid}/", f"https://login.microsoftonline.com/{tid}/v2.0"))
        issuer = ExternalIssuer(tid, str(source), issuers, tuple(e.get("audiences") or ()), float(e.get("refetch_interval", 300)))
        issuer.load_keys()
        out[tid] = issuer
    return out
