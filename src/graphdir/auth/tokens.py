"""Signing and validating access tokens shaped like Entra ID's tokens for Graph.

RS256 JWTs with the claims Graph access tokens carry (``aud``, ``iss``, ``tid``,
``oid``, ``appid``/``azp``, ``idtyp``, ``scp`` or ``roles``, ``wids``,
``iat``/``nbf``/``exp``). Keys are generated on first start, persisted in the
store's ``meta`` table and rotatable: retired keys keep validating until the
tokens they signed expire, and a removed key stops validating at once, cached tokens
included. Failures raise 401 ``InvalidAuthenticationToken``
with the messages of docs/behaviour.md#authentication-errors.

Validation (:class:`Validator`), in Graph's order: a compact JWS at all
(``IDX14100``), an allowed algorithm (only ``RS256``: ``none`` and HMAC tokens,
including HS256 "signed" with the public key, are refused), a known ``kid``
and a good signature, lifetime (``exp``/``nbf``, with ``clock_skew`` seconds of
tolerance, 300 by default like Entra; ``exp``, ``nbf`` and ``iat`` must be numbers),
audience (``https://graph.microsoft.com``, ``00000003-0000-0000-c000-000000000000``, Graph's
national-cloud addresses, or this service's own address: ``public_base_url`` and the origin the
request came to, which tools configured for a custom cloud name as Graph; in graphdir's own
tokens only), issuer
``https://sts.windows.net/{tid}/`` and finally a tenant this service holds.
Tokens of tenants configured as *external* (:mod:`graphdir.auth.external`)
are checked against that issuer's JWKS instead of the local keys.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from graphdir import errors
from graphdir.auth.external import ExternalIssuer
from graphdir.auth.keysignal import KeySignal, PushSignal

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
#: Microsoft Graph's addresses in the national clouds, which tools configured for those clouds name as
#: Graph's resource (learn.microsoft.com/graph/deployments#microsoft-graph-and-graph-explorer-service-root-endpoints).
SOVEREIGN_GRAPH = (
    "https://graph.microsoft.us",  # US Government L4
    "https://dod-graph.microsoft.us",  # US Government L5 (DOD)
    "https://microsoftgraph.chinacloudapi.cn",  # operated by 21Vianet
    "https://graph.microsoft.de",  # Germany (retired cloud, still in tools' cloud lists)
)
GRAPH_RESOURCES = ("https://graph.microsoft.com", *SOVEREIGN_GRAPH)
AUDIENCES = (GRAPH_APP_ID, *GRAPH_RESOURCES, *(r + "/" for r in GRAPH_RESOURCES))
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


def own_name(origin: str) -> str:
    """``scheme://host[:port]`` as compared with ``aud`` and scope resources: lower case, no trailing ``/``."""
    return origin.rstrip("/").lower()


def _number(value: Any) -> bool:
    """A NumericDate of RFC 7519 §2: a JSON number (not a string, a boolean, NaN or an infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


def _signal_path(meta: Any) -> Path | None:
    """``<database>-keys`` beside a SQLite file; none for a database in memory or another backend."""
    path = getattr(meta, "path", None)
    if not isinstance(path, Path) or str(path) == ":memory:":
        return None
    return Path(f"{path}-keys")


def _new_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    kid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    return SigningKey(kid, pem, time.time())


class KeyRing:
    """The service's signing keys (one set for every tenant, like Entra's); the newest unretired key signs.

    ``graphdir keys rotate`` may change the keys from another process: every request checks the
    database's "keys changed" signal (:mod:`graphdir.auth.keysignal`, one memory read) and the
    ring re-reads the keys as soon as it moved, so a token signed by a just-added key is accepted
    at once and a removed key stops validating at once; an unknown ``kid`` with no change
    signalled is refused without a database read. ``generation`` counts the reloads that removed
    a key: the token caches (:class:`Validator`, the app's actor cache) are emptied when it moves.
    """

    def __init__(self, meta: Any, max_token_lifetime: int = 86400, reload_interval: float = 2.0, signal: KeySignal | PushSignal | None = None) -> None:
        self._meta = meta
        self._lock = threading.Lock()
        self._max_life = max_token_lifetime
        self._raw: str | None = None
        self.generation = 0
        self.keys: list[SigningKey] = []
        self._public: dict[str, Any] = {}
        self._signal: KeySignal | PushSignal
        if signal is not None:
            self._signal = signal
        elif callable(getattr(meta, "listen", None)):  # a database server: it pushes changes
            self._signal = PushSignal(meta, reload_interval)
        else:
            self._signal = KeySignal(_signal_path(meta), reload_interval)
        self.load()

    def watch(self) -> None:
        """Serving processes: follow rotations made by other processes. With a signal file that is one
        memory read per request (:meth:`check`); on a database server the store's listener thread
        re-reads the keys as soon as a change is announced (:class:`PushSignal`)."""
        if isinstance(self._signal, PushSignal):
            self._signal.watch(lambda: self.refresh(force=True))

    def load(self) -> None:
        raw = self._meta.sync(self._meta.get_meta(_META_KEY))
        self._raw = raw
        if raw:
            self.keys = [SigningKey(**k) for k in json.loads(raw)]
        if not self.keys:
            self.keys = [_new_key()]
            self._save()
        self._public = {k.kid: k.private().public_key() for k in self.keys}

    def check(self) -> int:
        """Re-read the keys if any process signalled a change; returns :attr:`generation` (the hot path: one memory read)."""
        if self._signal.changed():
            self.refresh(force=True)
        return self.generation

    def refresh(self, force: bool = False) -> None:
        """Re-read the keys now (``force``) or when a change was signalled."""
        if not force:
            self.check()
            return
        raw = self._meta.sync(self._meta.get_meta(_META_KEY))
        if raw and raw != self._raw:
            with self._lock:
                self._raw = raw
                self._install([SigningKey(**k) for k in json.loads(raw)])

    def _install(self, keys: list[SigningKey]) -> None:
        """Use ``keys`` from now on; a key that is gone bumps :attr:`generation` (its cached tokens must go too)."""
        public = {k.kid: k.private().public_key() for k in keys}
        if any(kid not in public for kid in self._public):
            self.generation += 1
        self.keys = keys
        self._public = public

    def _save(self) -> None:
        self._raw = json.dumps([k.to_json() for k in self.keys])
        self._meta.put_meta(_META_KEY, self._raw)
        self._signal.announce()  # after the commit: see graphdir.auth.keysignal

    def rotate(self) -> SigningKey:
        """Add a new signing key; old keys keep validating for ``max_token_lifetime`` seconds."""
        with self._lock:
            now = time.time()
            for k in self.keys:
                if k.retired is None:
                    k.retired = now
            keys = [k for k in self.keys if k.retired is None or now - k.retired < self._max_life]
            new = _new_key()
            self._install([*keys, new])
            self._save()
            return new

    def remove(self, kid: str) -> SigningKey:
        """Drop a key from the JWKS at once (e.g. a leaked key): tokens it signed stop validating everywhere.

        The active key cannot be removed (rotate first); an unknown kid raises ``KeyError``.
        """
        with self._lock:
            found = [k for k in self.keys if k.kid == kid]
            if not found:
                raise KeyError(kid)
            if found[0] is self.active:
                raise ValueError(f"{kid} is the active signing key: rotate first, then remove it")
            self._install([k for k in self.keys if k.kid != kid])
            self._save()
            return found[0]

    @property
    def active(self) -> SigningKey:
        return [k for k in self.keys if k.retired is None][-1]

    def public_key(self, kid: str) -> Any:
        key = self._public.get(kid)
        if key is None and kid and self._signal.changed():  # a forged kid costs no database read
            self.refresh(force=True)
            key = self._public.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        self.check()
        return {"keys": [k.jwk() for k in self.keys]}

    def sign(self, claims: dict[str, Any]) -> str:
        self.check()
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
        own_names: tuple[str, ...] = (),
    ) -> None:
        self.ring = ring
        self.known_tenant = known_tenant  # callable(tid) -> bool
        self.skew = clock_skew
        self.external = external or {}
        #: this service's own addresses (``public_base_url``), accepted as ``aud`` besides Graph's names
        self.own_names = frozenset(own_name(n) for n in own_names if n)
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_size = cache_size
        self._generation = ring.generation

    def current(self) -> int:
        """The key ring's generation after checking for rotated keys; a new one empties the cache
        (a cached token must not outlive its key). Callers with caches of their own compare it too."""
        gen = self.ring.check()
        if gen != self._generation:
            self._cache.clear()
            self._generation = gen
        return gen

    def validate(self, token: str | None, origin: str = "") -> dict[str, Any]:
        """The claims of a valid token, else 401. ``origin`` (``scheme://host[:port]`` the request came to)
        is accepted as ``aud`` too: a token issued for this service under the name the client used."""
        if not token:
            raise errors.unauthenticated(MSG_EMPTY)
        self.current()
        hit = self._cache.get(token)
        now = time.time()
        if hit is not None:
            if hit["exp"] + self.skew > now:
                return hit
            del self._cache[token]
        claims = self._validate(token, now, origin)
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

    def _audience_ok(self, aud: Any, ext: ExternalIssuer | None, origin: str) -> bool:
        if aud in AUDIENCES:
            return True
        if ext is not None:
            # never this service's own names: the origin is the client's Host header, and an external issuer's
            # token for another resource of its tenant (same keys) would pass by naming that resource as Host
            return aud in ext.audiences
        if not isinstance(aud, str):
            return False
        name = own_name(aud)
        return name in self.own_names or (bool(origin) and name == own_name(origin))

    def _validate(self, token: str, now: float, origin: str = "") -> dict[str, Any]:
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
        # lifetime claims are NumericDates or absent (exp is required): "later", true, NaN do not decode
        if any(name in claims and not _number(claims[name]) for name in ("exp", "nbf", "iat")):
            raise errors.unauthenticated(MSG_INVALID)
        if exp is None or exp + self.skew <= now:
            raise errors.unauthenticated(MSG_EXPIRED)
        if nbf is not None and nbf - self.skew > now:
            raise errors.unauthenticated(MSG_NOT_YET)
        if not self._audience_ok(claims.get("aud"), ext, origin):
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
