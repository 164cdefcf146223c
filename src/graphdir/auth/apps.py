"""Application registrations: client ids, client secrets and what an app was granted.

Entra ID's model, reduced to what a token authority needs
(learn.microsoft.com/entra/identity-platform/app-objects-and-service-principals):

* ``roles`` — *application* permissions an administrator granted (they become the
  ``roles`` claim of client-credentials tokens);
* ``scopes`` — *delegated* permissions consented for the app (the ``scp`` claim of
  user tokens; asking for anything else is ``AADSTS65001``);
* ``secrets`` — client secrets, stored only as salted SHA-256 hashes with Entra's
  ``keyId``/``hint``/``startDateTime``/``endDateTime`` (the value is shown once);
* ``publicClient`` — "Allow public client flows": a client without a secret may use
  the password grant and redeem authorization codes;
* ``redirectUris`` — where ``/authorize`` may send codes.

Writes go through the store's single writer (``Txn.put_application``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from graphdir.store.base import Store, StoredApp

_SECRET_ALPHABET = string.ascii_letters + string.digits + "~._-"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_secret_value() -> str:
    """40 characters shaped like Entra's secrets: a 3-character hint, ``8Q~`` and 34 random characters."""
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + "8Q~" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))


def _hash(value: str, salt: bytes) -> str:
    return "sha256$" + salt.hex() + "$" + hashlib.sha256(salt + value.encode()).hexdigest()


def secret_record(value: str, display_name: str = "graphdir", years: float = 2.0) -> dict[str, Any]:
    """The stored form of a client secret (passwordCredential): never the value itself."""
    now = datetime.now(UTC)
    return {
        "keyId": str(uuid.uuid4()),
        "displayName": display_name,
        "hint": value[:3],
        "hash": _hash(value, os.urandom(16)),
        "startDateTime": _iso(now),
        "endDateTime": _iso(now + timedelta(days=365 * years)),
    }


def check_secret(app: StoredApp, value: str, now: datetime | None = None) -> str:
    """``ok``, ``expired`` (AADSTS7000222) or ``invalid`` (AADSTS7000215)."""
    now = now or datetime.now(UTC)
    stamp = _iso(now)
    matched_expired = False
    for rec in app.props.get("secrets", []):
        try:
            _, salt, _digest = str(rec["hash"]).split("$")
            ok = hmac.compare_digest(_hash(value, bytes.fromhex(salt)), str(rec["hash"]))
        except (KeyError, ValueError):
            continue
        if ok:
            if str(rec.get("endDateTime") or "9999") <= stamp:
                matched_expired = True
                continue
            return "ok"
    return "expired" if matched_expired else "invalid"


def has_secrets(app: StoredApp) -> bool:
    return bool(app.props.get("secrets"))


def split_list(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"A,B C"`` or ``["A", "B"]`` → ``["A", "B", "C"]`` (order kept, duplicates dropped)."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or [])
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


def build_app(
    tenant_id: str,
    display_name: str,
    *,
    app_id: str | None = None,
    roles: list[str] | None = None,
    scopes: list[str] | None = None,
    public_client: bool = False,
    redirect_uris: list[str] | None = None,
    secret: str | None = None,
    secret_years: float = 2.0,
) -> StoredApp:
    props: dict[str, Any] = {
        "roles": list(roles or []),
        "scopes": list(scopes or []),
        "publicClient": public_client,
        "redirectUris": list(redirect_uris or []),
        "secrets": [secret_record(secret, years=secret_years)] if secret else [],
    }
    return StoredApp(tenant_id, (app_id or str(uuid.uuid4())).lower(), display_name, props, _iso(datetime.now(UTC)))


def save_app(store: Store, app: StoredApp) -> StoredApp:
    store.write_sync(app.tenant_id, lambda tx: tx.put_application(app))
    return app


def add_secret(store: Store, app: StoredApp, display_name: str = "graphdir", years: float = 2.0) -> str:
    """Add a client secret (``addPassword``); returns the value, which is not kept."""
    value = new_secret_value()
    app.props.setdefault("secrets", []).append(secret_record(value, display_name, years))
    save_app(store, app)
    return value


def public_view(app: StoredApp) -> dict[str, Any]:
    """What ``graphdir app list`` prints: everything but the secret hashes."""
    p = app.props
    return {
        "appId": app.app_id,
        "displayName": app.display_name,
        "roles": p.get("roles", []),
        "scopes": p.get("scopes", []),
        "publicClient": bool(p.get("publicClient")),
        "redirectUris": p.get("redirectUris", []),
        "secrets": [{k: s.get(k) for k in ("keyId", "displayName", "hint", "startDateTime", "endDateTime")} for s in p.get("secrets", [])],
    }
