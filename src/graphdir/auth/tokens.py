"""Signing and validating access tokens shaped like Entra ID's tokens for Graph.

RS256 JWTs with the claims Graph access tokens carry (``aud``, ``iss``, ``tid``,
``oid``, ``appid``/``azp``, ``idtyp``, ``scp`` or ``roles``, ``wids``,
``iat``/``nbf``/``exp``). Keys are generated on first start, persisted in the
store's ``meta`` table and rotatable: retired keys keep validating until the
tokens they signed expire. Failures raise 401 ``InvalidAuthenticationToken``
with the messages of docs/behaviour.md#authentication-errors.

Validation (:class:`Validator`), in Graph's order: a compact JWS at all
(``IDX14100``), an allowed algorithm (only ``RS256``: ``none`` and HMAC tokens,
including HS256 "signed" with the public key, are refused), a known ``kid``
and a good signature, lifetime (``exp``/``nbf``, with ``clock_skew`` seconds of
tolerance, 300 by default like Entra), audience (``https://graph.microsoft.com``
or ``00000003-0000-0000-c000-000000000000``), issuer
``https://sts.windows.net/{tid}/`` and finally a tenant this service holds.
Tokens of tenants configured as *external* (:mod:`graphdir.auth.external`)
are checked against that issuer's JWKS instead of the local keys.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from graphdir import errors
from graphdir.auth.external import ExternalIssuer

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
AUDIENCES = ("https://graph.microsoft.com", GRAPH_APP_ID, "https://graph.microsoft.com/")
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
_META_KEY = "signing_keys"

MSG_EMPTY = "Access token is empty."
MSG_NO_DOTS = (
    "IDX14100: JWT is not well formed, there are no dots (.).\n"
    "The token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
    "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
    "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'."
)
MSG_EXPIRED = "Lifetime validation failed, the token is expired."
MSG_NOT_YET = "Lifetime validation failed, the token is not yet valid."
MSG_AUDIENCE = "Access token validation failure. Invalid audience."
MSG_ISSUER = "Access token validation failure. Invalid issuer."
MSG_INVALID = "Access token validation failure."
#: Unknown ``kid``, a bad signature or an algorithm other than RS256. Graph's own text when it
#: cannot verify a token's signature [OBS: python-o365#597, abraunegg/onedrive#1344, 2021].
MSG_SIGNATURE = "Signing key is invalid."
#: The only JWS algorithm accepted (Entra signs access tokens with RS256).
ALLOWED_ALGORITHMS = ("RS256",)


def issuer_for(tenant_id: str) -> str:
    """Graph access tokens are v1.0-format tokens issued by ``sts.windows.net/{tid}/``."""
    return f"https://sts.windows.net/{tenant_id}/"


@dataclass
class SigningKey:
    kid: str
    private_pem: str
    created: float
    retired: float | None = None

    def private(self) -> Any:
        """The loaded key; parsing a PEM costs ~0.1 s (RSA key checks), so it is done once per key."""
        key = _LOADED.get(self.private_pem)
        if key is None:
            key = _LOADED[self.private_pem] = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return key

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid, "private_pem": self.private_pem, "created": self.created, "retired": self.retired}

    def jwk(self) -> dict[str, Any]:
        pub = self.private().public_key()
        nums = pub.public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": b64(nums.n), "e": b64(nums.e), "alg": "RS256"}


_LOADED: dict[str, Any] = {}


def _new_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    kid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    return SigningKey(kid, pem, time.time())


class KeyRing:
    """The service's signing keys (one set for every tenant, like Entra's); the newest unretired key signs.

    ``graphdir keys rotate`` may rotate the keys from another process: a running
    service notices within ``reload_interval`` seconds (and at once when it meets
    an unknown ``kid``), so rotation needs no restart.
    """

    def __init__(self, meta: Any, max_token_lifetime: int = 86400, reload_interval: float = 2.0) -> None:
        self._meta = meta
        self._lock = threading.Lock()
        self._max_life = max_token_lifetime
        self._reload_interval = reload_interval
        self._raw: str | None = None
        self._checked = 0.0
        self.keys: list[SigningKey] = []
        self._public: dict[str, Any] = {}
        self.load()

    def load(self) -> None:
        raw = self._meta.get_meta(_META_KEY)
        self._raw = raw
        self._checked = time.monotonic()
        if raw:
            self.keys = [SigningKey(**k) for k in json.loads(raw)]
        if not self.keys:
            self.keys = [_new_key()]
            self._save()
        self._public = {k.kid: k.private().public_key() for k in self.keys}

    def refresh(self, force: bool = False) -> None:
        """Pick up keys rotated by another process (at most once per ``reload_interval`` unless forced)."""
        now = time.monotonic()
        if not force and now - self._checked < self._reload_interval:
            return
        self._checked = now
        raw = self._meta.get_meta(_META_KEY)
        if raw and raw != self._raw:
            with self._lock:
                self._raw = raw
                self.keys = [SigningKey(**k) for k in json.loads(raw)]
                self._public = {k.kid: k.private().public_key() for k in self.keys}

    def _save(self) -> None:
        self._raw = json.dumps([k.to_json() for k in self.keys])
        self._meta.put_meta(_META_KEY, self._raw)

    def rotate(self) -> SigningKey:
        """Add a new signing key; old keys keep validating for ``max_token_lifetime`` seconds."""
        with self._lock:
            now = time.time()
            for k in self.keys:
                if k.retired is None:
                    k.retired = now
            self.keys = [k for k in self.keys if k.retired is None or now - k.retired < self._max_life]
            new = _new_key()
            self.keys.append(new)
            self._save()
            self._public = {k.kid: k.private().public_key() for k in self.keys}
            return new

    @property
    def active(self) -> SigningKey:
        return [k for k in self.keys if k.retired is None][-1]

    def public_key(self, kid: str) -> Any:
        key = self._public.get(kid)
        if key is None and kid:
            self.refresh()
            key = self._public.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        self.refresh()
        return {"keys": [k.jwk() for k in self.keys]}

    def sign(self, claims: dict[str, Any]) -> str:
        self.refresh()
        key = self.active
        return jwt.encode(claims, key.private(), algorithm="RS256", headers={"kid": key.kid, "x5t": key.kid, "typ": "JWT"})


def mint(
    ring: KeyRing,
    tenant_id: str,
    *,
    app_id: str,
    roles: list[str] | None = None,
    scopes: list[str] | None = None,
    user_id: str | None = None,
    upn: str | None = None,
    wids: list[str] | None = None,
    lifetime: int = 3600,
    audience: str = "https://graph.microsoft.com",
    not_before: int | None = None,
    issuer: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Mint an access token: ``roles`` for application tokens, ``scp`` for delegated ones.

    ``extra`` adds claims Entra puts in Graph tokens (``app_displayname``, ``appidacr``,
    ``name``, ``amr``…); they are informational, validation never needs them.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": issuer or issuer_for(tenant_id),
        "iat": now,
        "nbf": now if not_before is None else not_before,
        "exp": now + lifetime,
        "tid": tenant_id,
        "appid": app_id,
        "azp": app_id,
        "ver": "1.0",
        "uti": uuid.uuid4().hex[:22],
    }
    if user_id:
        claims.update({"idtyp": "user", "oid": user_id, "sub": user_id, "scp": " ".join(scopes or [])})
        if upn:
            claims["upn"] = upn
        claims["wids"] = wids or []
    else:
        sp_id = service_principal_id(tenant_id, app_id)
        claims.update({"idtyp": "app", "oid": sp_id, "sub": sp_id})
        if roles:  # Entra leaves ``roles`` out of app tokens that were granted nothing
            claims["roles"] = roles
    if extra:
        claims.update(extra)
    return ring.sign(claims)


def service_principal_id(tenant_id: str, app_id: str) -> str:
    """The app's service principal object id in the tenant (``oid`` of its app-only tokens); stable per (tenant, app)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{app_id}"))


class Validator:
    """Validates bearer tokens; caches verified tokens until they expire (cheap on the hot path).

    Every failure is ``401 InvalidAuthenticationToken`` with a ``WWW-Authenticate``
    header (docs/behaviour.md#authentication-errors); see the module docstring for the order of checks.
    """

    def __init__(
        self,
        ring: KeyRing,
        known_tenant: Any,
        clock_skew: int = 300,
        cache_size: int = 10_000,
        external: dict[str, ExternalIssuer] | None = None,
    ) -> None:
        self.ring = ring
        self.known_tenant = known_tenant  # callable(tid) -> bool
        self.skew = clock_skew
        self.external = external or {}
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_size = cache_size

    def validate(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise errors.unauthenticated(MSG_EMPTY)
        hit = self._cache.get(token)
        now = time.time()
        if hit is not None:
            if hit["exp"] + self.skew > now:
                return hit
            del self._cache[token]
        claims = self._validate(token, now)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = claims
        return claims

    def _key(self, kid: str, unverified: dict[str, Any]) -> tuple[Any, ExternalIssuer | None]:
        key = self.ring.public_key(kid)
        if key is not None:
            return key, None
        tid = unverified.get("tid")
        ext = self.external.get(tid.lower()) if isinstance(tid, str) else None
        if ext is not None:
            key = ext.public_key(kid)
            if key is not None:
                return key, ext
        raise errors.unauthenticated(MSG_SIGNATURE)

    def _validate(self, token: str, now: float) -> dict[str, Any]:
        if "." not in token:
            raise errors.unauthenticated(MSG_NO_DOTS)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise errors.unauthenticated(MSG_INVALID) from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:  # "none", HS256 with the public key as secret, …
            raise errors.unauthenticated(MSG_SIGNATURE)
        key, ext = self._key(str(header.get("kid") or ""), unverified)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALLOWED_ALGORITHMS),
                options={
                    "verify_exp": False, "verify_nbf": False, "verify_aud": False, "verify_iat": False,
                    "verify_iss": False, "verify_sub": False, "verify_jti": False,
                },
            )  # fmt: skip
        except jwt.PyJWTError:
            raise errors.unauthenticated(MSG_SIGNATURE) from None
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or exp + self.skew <= now:
            raise errors.unauthenticated(MSG_EXPIRED)
        if isinstance(nbf, (int, float)) and nbf - self.skew > now:
            raise errors.unauthenticated(MSG_NOT_YET)
        audiences = AUDIENCES + (ext.audiences if ext else ())
        if claims.get("aud") not in audiences:
            raise errors.unauthenticated(MSG_AUDIENCE)
        tid = claims.get("tid")
        if not isinstance(tid, str):
            raise errors.unauthenticated(MSG_ISSUER)
        if ext is not None:
            if tid.lower() != ext.tenant_id or claims.get("iss") not in ext.issuers:
                raise errors.unauthenticated(MSG_ISSUER)
            claims.setdefault("idtyp", "user" if "scp" in claims else "app")
        elif claims.get("iss") != issuer_for(tid):
            raise errors.unauthenticated(MSG_ISSUER)
        if tid != CONSUMER_TENANT and not self.known_tenant(tid):
            raise errors.unauthenticated(MSG_ISSUER)
        return claims
