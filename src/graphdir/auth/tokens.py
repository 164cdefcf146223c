"""Signing and validating access tokens shaped like Entra ID's tokens for Graph.

RS256 JWTs with the claims Graph access tokens carry (``aud``, ``iss``, ``tid``,
``oid``, ``appid``/``azp``, ``idtyp``, ``scp`` or ``roles``, ``wids``,
``iat``/``nbf``/``exp``). Keys are generated on first start, persisted in the
store's ``meta`` table and rotatable: retired keys keep validating until the
tokens they signed expire. Failures raise 401 ``InvalidAuthenticationToken``
with the messages of graph-behaviour.md §5.3.
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
        return serialization.load_pem_private_key(self.private_pem.encode(), password=None)

    def jwk(self) -> dict[str, Any]:
        pub = self.private().public_key()
        nums = pub.public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": b64(nums.n), "e": b64(nums.e), "alg": "RS256"}


def _new_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    kid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    return SigningKey(kid, pem, time.time())


class MetaStore:
    """The two methods of the store the key ring needs."""

    def get_meta(self, key: str) -> str | None: ...  # pragma: no cover
    def put_meta(self, key: str, value: str) -> None: ...  # pragma: no cover


class KeyRing:
    """The service's signing keys; the newest unretired key signs."""

    def __init__(self, meta: Any, max_token_lifetime: int = 86400) -> None:
        self._meta = meta
        self._lock = threading.Lock()
        self._max_life = max_token_lifetime
        self.keys: list[SigningKey] = []
        self._public: dict[str, Any] = {}
        self.load()

    def load(self) -> None:
        raw = self._meta.get_meta(_META_KEY)
        if raw:
            self.keys = [SigningKey(**k) for k in json.loads(raw)]
        if not self.keys:
            self.keys = [_new_key()]
            self._save()
        self._public = {k.kid: k.private().public_key() for k in self.keys}

    def _save(self) -> None:
        self._meta.put_meta(_META_KEY, json.dumps([k.__dict__ for k in self.keys]))

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
        return self._public.get(kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def sign(self, claims: dict[str, Any]) -> str:
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
) -> str:
    """Mint an access token: ``roles`` for application tokens, ``scp`` for delegated ones."""
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
        sp_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{app_id}"))
        claims.update({"idtyp": "app", "oid": sp_id, "sub": sp_id, "roles": roles or []})
    return ring.sign(claims)


class Validator:
    """Validates bearer tokens; caches verified tokens until they expire (cheap on the hot path)."""

    def __init__(self, ring: KeyRing, known_tenant: Any, clock_skew: int = 300, cache_size: int = 10_000) -> None:
        self.ring = ring
        self.known_tenant = known_tenant  # callable(tid) -> bool
        self.skew = clock_skew
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

    def _validate(self, token: str, now: float) -> dict[str, Any]:
        if "." not in token:
            raise errors.unauthenticated(MSG_NO_DOTS)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.unauthenticated(MSG_INVALID) from None
        if header.get("alg") != "RS256":
            raise errors.unauthenticated(MSG_INVALID)
        key = self.ring.public_key(str(header.get("kid", "")))
        if key is None:
            raise errors.unauthenticated(MSG_INVALID)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["RS256"], options={"verify_exp": False, "verify_nbf": False, "verify_aud": False, "verify_iat": False}
            )
        except jwt.PyJWTError:
            raise errors.unauthenticated(MSG_INVALID) from None
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or exp + self.skew <= now:
            raise errors.unauthenticated(MSG_EXPIRED)
        if isinstance(nbf, (int, float)) and nbf - self.skew > now:
            raise errors.unauthenticated(MSG_NOT_YET)
        if claims.get("aud") not in AUDIENCES:
            raise errors.unauthenticated(MSG_AUDIENCE)
        tid = claims.get("tid")
        if not isinstance(tid, str) or claims.get("iss") != issuer_for(tid):
            raise errors.unauthenticated(MSG_ISSUER)
        if tid != CONSUMER_TENANT and not self.known_tenant(tid):
            raise errors.unauthenticated(MSG_ISSUER)
        return claims
